"""Composition root: build every part from Settings; start and stop them in order."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Iterable, Mapping
from functools import partial
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from bridge.api.context import ApiContext
from bridge.api.protocol import start_site
from bridge.api.server import build_api
from bridge.clock import Clock, ServerClock, SystemClock
from bridge.delivery.deliverer import Deliverer
from bridge.delivery.sender import WebhookSender, webhook_session
from bridge.delivery.static import sync_static_subscriptions
from bridge.errors import (
    AuthError,
    BridgeError,
    NoSlot,
    NotFoundError,
    RateLimitedError,
    StoreOutage,
    TransientUpstreamError,
    UpstreamError,
)
from bridge.metrics import Metrics
from bridge.model import ALL_ROLES, Role
from bridge.outage import OutageLog
from bridge.poll.discovery import DiscoveredSource, Discovery
from bridge.poll.poller import PolledSource, Poller
from bridge.poll.progress import ProgressEvents
from bridge.poll.scheduler import Ticker
from bridge.providers.base import Discoverable, fetch_snapshot
from bridge.providers.config import SourceBase
from bridge.providers.deps import BuildDeps
from bridge.providers.http import UpstreamHttp, default_session
from bridge.providers.registry import build_provider
from bridge.sealing import Sealer, SealError
from bridge.settings import Settings
from bridge.sources_live import REFRESH_EVERY_S, LiveSources, SourceSet
from bridge.store.connection import RedisTarget, connect, explain_cluster, explain_sentinels
from bridge.store.deliveries import DeliveryStore
from bridge.store.durations import DurationStore
from bridge.store.redis import RedisStore
from bridge.store.source_defs import SourceDefStore
from bridge.store.trends import TrendStore
from bridge.tracing import Tracing, shut_down_within, tracing_from_env
from bridge.watchdog import Watchdog

log = structlog.get_logger("bridge.app")

# Upkeep (trimming indexes and the outbox) runs this often.
_JANITOR_EVERY_S = 60.0
# The budget-use gauges follow the 10 s windows they read.
_BUDGET_EVERY_S = 10.0
_TRENDS_EVERY_S = 10.0
CHECK_JOB_ID = "import-bridge-credentials-check"  # a job no upstream has
CHECK_WAIT_S = 5.0  # for a slot of the source's budget
_LAST_WORDS_S = 0.8  # for the last trend counts and spans to go out at a stop
# Redis reachability, data loss and clock offset are checked this often.
_WATCHDOG_EVERY_S = 1.0
# An outbox consumer idle this long with nothing pending belongs to a process long gone.
_CONSUMER_IDLE_S = 3600.0
# Start-up gives Redis this long to answer.
_REDIS_START_S = 10.0
# Closing connections after the drain: each close gets this long.
_CLOSE_S = 0.5


class StartupError(BridgeError):
    """The bridge cannot start; the message says why in one line."""


class Bridge:
    """One bridge process: the roles it runs, on shared Redis."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis_url: str | RedisTarget,
        roles: Iterable[Role] = ALL_ROLES,
        clock: Clock | None = None,
        local_clock: Clock | None = None,
        sealing_keys: list[bytes] | None = None,
    ) -> None:
        """clock: a fixed clock for tests; otherwise Redis server time, read through
        local_clock (the system clock) plus the measured offset."""
        self.settings = settings
        self.roles = frozenset(roles)
        # secrets written to Redis are sealed (sealing.py); the CLI passes the embedded
        # Redis's own key when none is configured
        keys = settings.sealing_keys() if sealing_keys is None else sealing_keys
        self._sealer = Sealer(keys)
        self._server_clock = None if clock is not None else ServerClock(local_clock)
        self.clock: Clock = clock or self._server_clock  # type: ignore[assignment]
        self._wall: Clock = clock or local_clock or SystemClock()
        self.metrics = Metrics()
        self.metrics.declare(settings.sources)
        self.outage = OutageLog(self.metrics)
        self._redis_url = redis_url
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: Ticker | None = None
        self._deliveries: DeliveryStore | None = None
        self.store: RedisStore | None = None
        self.poller: Poller | None = None
        self.discovery: Discovery | None = None
        self.deliverer: Deliverer | None = None
        self.watchdog: Watchdog | None = None
        self._webhook_session: aiohttp.ClientSession | None = None
        self.api_port: int | None = None
        self.tracing: Tracing = Tracing()
        # the sources polled now (the config file's and those defined through the API);
        # the admin API reads the kinds and rates below, kept current in place
        self.live: LiveSources | None = None
        self._http: UpstreamHttp | None = None
        self._polled: dict[str, PolledSource] = {}
        self._kinds: dict[str, tuple[str, ...]] = {}
        self._rates: dict[str, float] = {}
        self._discovers: set[str] = set()  # the sources discovery looks at

    def build_sources(
        self, store: RedisStore, http: UpstreamHttp, configs: Mapping[str, SourceBase]
    ) -> dict[str, PolledSource]:
        deps = BuildDeps(
            http=http,
            tokens=store.sources,
            clock=self.clock,
            token_throttle=lambda name: partial(token_slot, store, name),
        )
        return {
            name: PolledSource(name, build_provider(name, cfg, deps), cfg.rate_limit, cfg.burst)
            for name, cfg in configs.items()
        }

    def _discovered(self, sources: Mapping[str, PolledSource]) -> list[DiscoveredSource]:
        return [
            DiscoveredSource(
                name=name,
                provider=src.provider,
                rate_limit=src.rate_limit,
                burst=src.burst,
                since_s=found.since_s,
                every_s=found.every_s,
                max_watches=found.max_watches,
                window_s=self.settings.poll.max_age,
            )
            for name, src in sources.items()
            if isinstance(src.provider, Discoverable)
            and (found := src.provider.discovery) is not None
        ]

    def _sources_changed(self, current: SourceSet, changed: set[str]) -> None:
        """A source defined, changed or deleted through the API (any replica): built
        afresh, and everyone who polls, discovers, checks or counts told."""
        if self.store is None or self._http is None:  # stopping
            return
        fresh = self.build_sources(
            self.store, self._http, {n: current.configs[n] for n in changed if n in current.configs}
        )
        for name in changed:
            self._polled.pop(name, None)
            self._kinds.pop(name, None)
            self._rates.pop(name, None)
            if name not in fresh:
                self.metrics.forget(name)
        self._polled.update(fresh)
        self._kinds.update({n: src.provider.kinds for n, src in fresh.items()})
        self._rates.update({n: src.rate_limit for n, src in fresh.items()})
        self.metrics.declare(fresh)
        if self.poller:
            self.poller.update_sources(fresh, changed - set(fresh), current.deleted)
            self.poller.wake()
        if self.discovery and (self._discovers & changed or self._discovered(fresh)):
            discovered = self._discovered(self._polled)
            self._discovers = {d.name for d in discovered}
            self.discovery.set_sources(discovered)
        log.info("sources_changed", sources=sorted(changed), polled=len(self._polled))

    async def start(self) -> None:
        """Start every role. StartupError (one line) when something is in the way."""
        s = self.settings
        self.tracing = tracing_from_env(os.environ)
        # Workers wait for connections rather than fail; room for both pools and the API.
        client = connect(
            self._redis_url, max_connections=s.poll.concurrency + s.delivery.concurrency + 32
        )
        store = self.store = RedisStore(
            client, s.key_prefix, head_start_s=s.poll.max_interval, sealer=self._sealer
        )
        target = self._redis_url
        where = "redis_sentinels" if s.redis_mode == "sentinel" else "redis_url"
        mode = target.mode if isinstance(target, RedisTarget) else "single"
        try:
            await _first_answer(store.ping(), f"{where}: Redis does not answer")
        except StartupError:
            if isinstance(target, RedisTarget) and target.mode == "sentinel":
                # say which setting is wrong: the Sentinels, the name, or the password
                why = await _first_answer(explain_sentinels(target), "redis_sentinels")
                raise StartupError(why) from None
            if isinstance(target, RedisTarget) and target.mode == "cluster" and target.url:
                why = await _first_answer(explain_cluster(target.url), "redis_url")
                if why:
                    raise StartupError(why) from None
            raise
        if mode != "cluster" and await _first_answer(store.is_cluster_node(), where):
            # it would answer MOVED for every key another node serves
            raise StartupError(
                f'{where}: this Redis is a node of a Redis Cluster; set redis_mode = "cluster"'
            )
        deliveries = self._deliveries = DeliveryStore(store)
        unreadable = await _first_answer(deliveries.unreadable_subscriptions(), where)
        if unreadable:  # a wrong or missing key: said now, never a failure later
            raise StartupError(
                f"secrets_keys cannot open what Redis holds: {'; '.join(unreadable[:5])}"
                + (f" (and {len(unreadable) - 5} more)" if len(unreadable) > 5 else "")
            )
        self.watchdog = Watchdog(
            store=store,
            clock=self._server_clock,
            metrics=self.metrics,
            outage=self.outage,
            on_data_lost=self._rebuild,
        )
        await _first_answer(self.watchdog.start(), f"{where}: Redis does not answer")
        self._session = default_session(s.poll.concurrency, trust_env=s.http.trust_env)
        http = UpstreamHttp(
            self._session, timeout_s=s.poll.request_timeout, max_body_bytes=s.poll.max_body_bytes
        )
        self._http = http
        self.live = LiveSources(dict(s.sources), SourceDefStore(store))
        try:
            await _first_answer(self.live.refresh(strict=True), where)
        except SealError as exc:
            raise StartupError(f"secrets_keys cannot open what Redis holds: {exc}") from None
        sources = self._polled = self.build_sources(store, http, self.live.current.configs)
        self._kinds.update({n: src.provider.kinds for n, src in sources.items()})
        self._rates.update({n: src.rate_limit for n, src in sources.items()})
        self.metrics.declare(sources)
        self._ticker = Ticker()
        self._ticker.every(_WATCHDOG_EVERY_S, self.watchdog.tick, "watchdog")
        if Role.POLLER in self.roles:
            self.poller = Poller(
                store=store,
                http=http,
                sources=dict(sources),  # its own: told of changes (update_sources)
                settings=s.poll,
                clock=self.clock,
                metrics=self.metrics,
                on_event=self._event_written,
                outage=self.outage,
                durations=DurationStore(store),
                progress=ProgressEvents(
                    deliveries,
                    step=s.poll.progress_step,
                    min_interval_s=s.poll.progress_min_interval,
                    retention_s=s.poll.retention,
                ),
                tracing=self.tracing,
                deleted=self.live.current.deleted,
            )
            self.poller.start()
            self._ticker.every(s.poll.tick, self._tick, "poll_tick")
            discovered = self._discovered(sources)
            self._discovers = {d.name for d in discovered}
            self.discovery = Discovery(
                store=store,
                http=http,
                sources=discovered,
                clock=self.clock,
                on_registered=self.poller.wake,
                metrics=self.metrics,
            )
            self._ticker.every(1.0, self.discovery.tick, "discovery")
        self.live.on_change(self._sources_changed)
        self._ticker.every(REFRESH_EVERY_S, self._refresh_sources, "sources")
        self._ticker.every(_JANITOR_EVERY_S, self._janitor, "janitor")
        self._ticker.every(_BUDGET_EVERY_S, self._budget_gauges, "budget_gauges")
        self._ticker.every(_TRENDS_EVERY_S, self.flush_trends, "trends")
        await sync_static_subscriptions(deliveries, s, self.clock.now())
        if Role.DELIVERER in self.roles:
            d = s.delivery
            self._webhook_session = webhook_session(
                limit=d.concurrency, policy=d.targets, trust_env=s.http.trust_env
            )
            sender = WebhookSender(
                self._webhook_session,
                timeout_s=d.timeout,
                policy=d.targets,
                check_names=s.http.trust_env,
            )
            self.deliverer = Deliverer(
                store=deliveries,
                sender=sender,
                settings=d,
                clock=self.clock,
                metrics=self.metrics,
                outage=self.outage,
                on_data_lost=self.watchdog.recover,
                wall=self._wall,
                tracing=self.tracing,
            )
            await self.deliverer.start()
            self._ticker.every(s.poll.tick, self.deliverer.tick, "delivery_tick")
        self._ticker.start()
        if Role.API in self.roles:
            await self._start_api(self._kinds, deliveries)
        log.info(
            "bridge_started", roles=sorted(r.value for r in self.roles), sources=sorted(sources)
        )

    async def _start_api(
        self, source_kinds: dict[str, tuple[str, ...]], deliveries: DeliveryStore
    ) -> None:
        assert self.store is not None
        s = self.settings
        ctx = ApiContext(
            store=self.store,
            clock=self.clock,
            metrics=self.metrics,
            source_kinds=source_kinds,
            tokens=tuple(t.get_secret_value() for t in s.api.tokens),
            read_tokens=tuple(t.get_secret_value() for t in s.api.read_tokens),
            max_body_bytes=s.api.max_body_bytes,
            on_registered=self.poller.wake if self.poller else (lambda: None),
            deliveries=deliveries,
            allow_private_targets=s.delivery.allow_private_targets,
            allowed_targets=tuple(s.delivery.allowed_targets),
            rotation_grace=s.delivery.rotation_grace,
            retention=s.poll.retention,
            on_delivery_work=self.deliverer.wake if self.deliverer else (lambda: None),
            readiness=self.readiness,
            outage=self.outage,
            trusted_proxies=tuple(s.api.trusted_proxies),
            source_rates=self._rates,
            sources=self.live,
            check_source=self.check_source,
        )
        host, port = s.api.host_port
        try:
            self._runner, self.api_port = await start_site(
                build_api(ctx), host, port, shutdown_timeout=min(5.0, s.shutdown_grace)
            )
        except OSError as exc:
            raise StartupError(
                f"api.listen: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None
        log.info("api_listening", host=host, port=self.api_port)

    def readiness(self) -> dict[str, Any]:
        """What this process needs to do its work: Redis answering, the data marker
        checked lately, and every loop of its roles running."""
        checks: dict[str, Any] = {
            "redis": "ok" if self.outage.down_since is None else "unreachable",
            "watchdog": "ok" if self.watchdog and self.watchdog.healthy else "stale",
        }
        if Role.POLLER in self.roles:
            checks["poller"] = "ok" if self.poller and self.poller.pool.running else "stopped"
        if Role.DELIVERER in self.roles:
            checks["deliverer"] = "ok" if self.deliverer and self.deliverer.running else "stopped"
        return checks

    async def _rebuild(self) -> None:
        """Redis lost its data: rebuild what this process can (the watchdog calls this)."""
        if self._deliveries is None:
            return
        # Static subscriptions before the group: a replica that finds the group there
        # must find them too, or it would fan events out to nobody.
        await sync_static_subscriptions(self._deliveries, self.settings, self.clock.now())
        await self._deliveries.ensure_group()
        if self.deliverer:
            self.deliverer.forget_subscriptions()

    def _event_written(self) -> None:
        if self.deliverer:
            self.deliverer.event_written()

    async def _tick(self) -> None:
        if self.poller:
            self.poller.wake()

    async def _budget_gauges(self) -> None:
        """bridge_source_budget_used_ratio: the fleet's use of each limited source; and
        bridge_source_healthy as the fleet sees it (any replica may have found out)."""
        if self.store is None:
            return
        try:
            for name, rate in list(self._rates.items()):
                used = await self.store.sources.budget_used(name, rate)
                if used is not None:
                    self.metrics.budget_used.labels(name).set(used)
                health = await self.store.sources.get_health(name)
                self.metrics.source_healthy.labels(name).set(1 if health.healthy else 0)
                if self.poller:
                    self.poller.fleet_health(name, health.healthy)
                self.metrics.paused.labels(name).set(await self.store.sources.pause_left(name))
        except Exception as exc:  # a gauge is not worth more than a line
            self.outage.failed("budget_gauges", exc)

    async def flush_trends(self) -> None:
        """This process's tally into the fleet's trend buckets (the console's charts)."""
        if self.store is None:
            return
        counts = self.metrics.tally.take()
        try:
            await TrendStore(self.store).add(counts, self.clock.now())
        except asyncio.CancelledError:  # a stop: the last flush takes them
            self.metrics.tally.give_back(counts)
            raise
        except Exception as exc:  # kept for the next flush; a chart is not worth more
            self.metrics.tally.give_back(counts)
            self.outage.failed("trends", exc)

    async def check_source(self, name: str) -> dict[str, Any]:
        """One authenticated status request for a job no one has, within the source's
        budget: a 404 says the credentials were accepted; 401/403 that they were not."""
        src, store, http = self._polled.get(name), self.store, self._http
        if src is None or store is None or http is None:
            return {"ok": False, "reason": "not polled by this process yet: ask again"}
        try:
            delay = await store.sources.acquire(
                name, src.rate_limit, src.burst, CHECK_WAIT_S, source=name
            )
            await asyncio.sleep(delay)
            await asyncio.wait_for(
                fetch_snapshot(src.provider, http, src.provider.kinds[0], CHECK_JOB_ID,
                               self.clock.now()),
                self.settings.poll.request_timeout * 2,
            )  # fmt: skip
        except NoSlot as exc:
            return {"ok": False, "reason": f"no budget now: ask again in {exc.retry_after_s:.1f} s"}
        except NotFoundError:
            return {
                "ok": True,
                "reason": "the credentials were accepted (the probe job is unknown)",
            }
        except AuthError as exc:
            return {"ok": False, "reason": f"the credentials were refused: {exc}"}
        except RateLimitedError as exc:
            return {
                "ok": False,
                "reason": f"rate limited (429): ask again in {exc.retry_after_s:g} s",
            }
        except (TransientUpstreamError, TimeoutError) as exc:
            return {"ok": False, "reason": f"no answer: {exc or 'timed out'}"}
        except StoreOutage:
            return {"ok": False, "reason": "Redis is unavailable: ask again"}
        except UpstreamError as exc:  # answered: not refused for its credentials
            return {"ok": True, "reason": f"answered ({type(exc).__name__}): accepted"}
        except Exception as exc:  # the request could not be made as configured
            return {"ok": False, "reason": f"the request could not be made: {type(exc).__name__}"}
        return {"ok": True, "reason": "the credentials were accepted"}

    async def _refresh_sources(self) -> None:
        try:
            if self.live:
                await self.live.refresh()
        except Exception as exc:  # the sources stay as they were; asked again soon
            self.outage.failed("sources", exc)

    async def _janitor(self) -> None:
        """Upkeep of the indexes (every replica may run it: each step is idempotent)."""
        if self.store:
            p = self.settings.poll
            now = self.clock.now()
            try:
                await self.store.trim(now, p.retention, p.max_age)
                if self._deliveries is not None:
                    await self._deliveries.trim_index(now, self.settings.delivery.retention)
                    await self._deliveries.drop_idle_consumers(_CONSUMER_IDLE_S)
            except Exception as exc:  # upkeep must never take the process down
                self.outage.failed("janitor", exc)

    async def stop(self, grace_s: float | None = None) -> None:
        """Idempotent. Every claim loop stops at once and no new request starts; work in
        flight gets grace_s (default: shutdown_grace), then connections close. Returns
        within grace_s plus about a second."""
        grace = self.settings.shutdown_grace if grace_s is None else grace_s
        discovery, self.discovery = self.discovery, None
        if self._ticker:
            self._ticker.stop()
            self._ticker = None
        poller, deliverer, runner = self.poller, self.deliverer, self._runner
        self.poller = self.deliverer = self._runner = None
        for pool in (poller, deliverer):
            if pool:
                pool.begin_stop()
        drains: list[Awaitable[None]] = []
        if discovery:  # before Redis closes: a look under way releases its lock
            drains.append(discovery.stop(min(grace, 1.0)))
        if runner:
            drains.append(runner.cleanup())
        if poller:
            drains.append(poller.stop(grace))
        if deliverer:
            drains.append(deliverer.stop(grace))
        # The budget: the drains grace + their 0.5 s cancel bound, the last words 0.8 s,
        # then the closes 0.5 s together; the process exits within grace + 2 s.
        await _bounded([asyncio.ensure_future(d) for d in drains], grace + 0.6)
        # What this process counted and traced goes out before Redis closes: together,
        # within _LAST_WORDS_S (the exit stays within grace + 2 s)
        tracing, self.tracing = self.tracing, Tracing()
        last_words = [self.flush_trends(), shut_down_within(tracing, _LAST_WORDS_S)]
        await _bounded([asyncio.ensure_future(w) for w in last_words], _LAST_WORDS_S)
        closes = [s.close() for s in (self._webhook_session, self._session) if s]
        if self.store:
            closes.append(self.store.close())
        await _bounded([asyncio.ensure_future(c) for c in closes], _CLOSE_S)
        self._webhook_session = self._session = None
        self.store = None
        log.info("bridge_stopped")


# Token requests have a fleet-wide budget of their own per source, whatever the source's
# rate_limit (0 included): a 401 storm must not become a token storm, and a 429 pause
# holds them too. A few back to back, then one per TOKEN_EVERY_S.
TOKEN_EVERY_S = 2.0
TOKEN_BURST = 3


async def token_slot(store: RedisStore, source: str) -> None:
    try:
        delay = await store.sources.acquire(
            f"{source}:token", 1 / TOKEN_EVERY_S, TOKEN_BURST, TOKEN_EVERY_S, source=source
        )
    except NoSlot as exc:
        if exc.paused:
            raise
        raise TransientUpstreamError("token requests are over their budget") from exc
    if delay > 0:
        await asyncio.sleep(delay)


async def _bounded(tasks: list[asyncio.Future[Any]], within_s: float) -> None:
    """Wait at most within_s for tasks; cancel the late ones. Failures are not raised:
    a shutdown goes on."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=within_s)
    for task in late:
        task.cancel()
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a failed close is not worth a warning


async def _first_answer(call: Awaitable[Any], what: str) -> Any:
    """A start-up call to Redis, bounded, with a one-line error naming the cause."""
    try:
        return await asyncio.wait_for(call, _REDIS_START_S)
    except TimeoutError:
        raise StartupError(f"{what} within {_REDIS_START_S:g} s") from None
    except Exception as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise StartupError(f"{what}: {detail}") from None


async def run_until_signalled(bridge: Bridge, stop: asyncio.Event) -> None:
    """Start, serve until stop is set, then stop. A failed start stops what did start
    and raises StartupError; a stop during start-up ends the start-up."""
    starting = asyncio.ensure_future(bridge.start())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # raises the start-up failure
            await stopped
    finally:
        stopped.cancel()
        if not starting.done():
            starting.cancel()
            await asyncio.wait({starting}, timeout=1.0)
        failed = starting.done() and not starting.cancelled() and starting.exception()
        await bridge.stop(1.0 if failed else None)
