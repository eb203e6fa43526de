"""Composition root: build every part from Settings; start and stop them in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiohttp
import structlog
from aiohttp import web

from bridge.api.server import ApiContext, build_api
from bridge.clock import Clock, SystemClock
from bridge.delivery.deliverer import Deliverer
from bridge.delivery.sender import WebhookSender, webhook_session
from bridge.delivery.static import sync_static_subscriptions
from bridge.metrics import Metrics
from bridge.model import ALL_ROLES, Role
from bridge.poll.poller import PolledSource, Poller
from bridge.poll.scheduler import Ticker
from bridge.providers.fullstory import FullStoryProvider
from bridge.providers.http import UpstreamHttp, default_session
from bridge.providers.talkdesk import TalkdeskProvider
from bridge.settings import FullStorySource, Settings, TalkdeskSource
from bridge.store.connection import connect
from bridge.store.deliveries import DeliveryStore
from bridge.store.redis import RedisStore

log = structlog.get_logger("bridge.app")

# Upkeep (trimming indexes and the outbox) runs this often.
_JANITOR_EVERY_S = 60.0


class Bridge:
    """One bridge process: the roles it runs, on shared Redis."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis_url: str,
        roles: Iterable[Role] = ALL_ROLES,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.roles = frozenset(roles)
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self._redis_url = redis_url
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: Ticker | None = None
        self._deliveries: DeliveryStore | None = None
        self.store: RedisStore | None = None
        self.poller: Poller | None = None
        self.deliverer: Deliverer | None = None
        self._webhook_session: aiohttp.ClientSession | None = None
        self.api_port: int | None = None

    def build_sources(self, store: RedisStore, http: UpstreamHttp) -> dict[str, PolledSource]:
        out: dict[str, PolledSource] = {}
        for name, cfg in self.settings.sources.items():
            provider: FullStoryProvider | TalkdeskProvider
            if isinstance(cfg, FullStorySource):
                provider = FullStoryProvider(cfg.api_key.get_secret_value(), cfg.base_url)
            elif isinstance(cfg, TalkdeskSource):
                provider = TalkdeskProvider(
                    source=name,
                    account=cfg.account,
                    client_id=cfg.client_id,
                    client_secret=cfg.client_secret.get_secret_value(),
                    http=http,
                    tokens=store,
                    clock=self.clock,
                    region=cfg.region,
                    base_url=cfg.base_url,
                    token_url=cfg.token_url,
                )
            out[name] = PolledSource(name, provider, cfg.rate_limit, cfg.burst)
        return out

    async def start(self) -> None:
        s = self.settings
        # Workers wait for connections rather than fail; room for both pools and the API.
        client = connect(
            self._redis_url, max_connections=s.poll.concurrency + s.delivery.concurrency + 32
        )
        self.store = RedisStore(client, s.key_prefix)
        await self.store.ping()
        self._session = default_session(s.poll.concurrency)
        http = UpstreamHttp(
            self._session, timeout_s=s.poll.request_timeout, max_body_bytes=s.poll.max_body_bytes
        )
        sources = self.build_sources(self.store, http)
        self._ticker = Ticker()
        if Role.POLLER in self.roles:
            self.poller = Poller(
                store=self.store,
                http=http,
                sources=sources,
                settings=s.poll,
                clock=self.clock,
                metrics=self.metrics,
                on_event=self._event_written,
            )
            self.poller.start()
            self._ticker.every(s.poll.tick, self._tick, "poll_tick")
        self._ticker.every(_JANITOR_EVERY_S, self._janitor, "janitor")
        deliveries = self._deliveries = DeliveryStore(self.store)
        await sync_static_subscriptions(deliveries, s, self.clock.now())
        if Role.DELIVERER in self.roles:
            d = s.delivery
            self._webhook_session = webhook_session(
                limit=d.concurrency, allow_private=d.allow_private_targets
            )
            sender = WebhookSender(
                self._webhook_session, timeout_s=d.timeout, allow_private=d.allow_private_targets
            )
            self.deliverer = Deliverer(
                store=deliveries, sender=sender, settings=d, clock=self.clock, metrics=self.metrics
            )
            await self.deliverer.start()
            self._ticker.every(s.poll.tick, self.deliverer.tick, "delivery_tick")
        self._ticker.start()
        if Role.API in self.roles:
            await self._start_api({n: src.provider.kinds for n, src in sources.items()}, deliveries)
        log.info("bridge_started", roles=sorted(self.roles), sources=sorted(sources))

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
            max_body_bytes=s.api.max_body_bytes,
            on_registered=self.poller.wake if self.poller else (lambda: None),
            deliveries=deliveries,
            allow_private_targets=s.delivery.allow_private_targets,
            rotation_grace=s.delivery.rotation_grace,
            retention=s.poll.retention,
            on_delivery_work=self.deliverer.wake if self.deliverer else (lambda: None),
        )
        self._runner = web.AppRunner(build_api(ctx), access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        host, port = s.api.host_port
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = [a for a in self._runner.addresses if isinstance(a, tuple)]
        self.api_port = int(bound[0][1]) if bound else port
        log.info("api_listening", host=host, port=self.api_port)

    def _event_written(self) -> None:
        if self.deliverer:
            self.deliverer.event_written()

    async def _tick(self) -> None:
        if self.poller:
            self.poller.wake()

    async def _janitor(self) -> None:
        """Upkeep of the indexes (every replica may run it: each step is idempotent)."""
        if self.store:
            p = self.settings.poll
            now = self.clock.now()
            try:
                await self.store.trim(now, p.retention, p.max_age)
                if self._deliveries is not None:
                    await self._deliveries.trim_index(now, self.settings.delivery.retention)
            except Exception:  # upkeep must never take the process down
                log.exception("janitor_failed")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Idempotent: stop taking work, drain for grace_s, then close connections."""
        if self._ticker:
            self._ticker.stop()
            self._ticker = None
        if self._runner:
            await self._runner.cleanup()
            self._runner = None
        if self.poller:
            await self.poller.stop(grace_s)
            self.poller = None
        if self.deliverer:
            await self.deliverer.stop(grace_s)
            self.deliverer = None
        if self._webhook_session:
            await self._webhook_session.close()
            self._webhook_session = None
        if self._session:
            await self._session.close()
            self._session = None
        if self.store:
            await self.store.client.aclose()
            self.store = None
        log.info("bridge_stopped")


async def run_until_signalled(bridge: Bridge, stop: asyncio.Event) -> None:
    await bridge.start()
    try:
        await stop.wait()
    finally:
        await bridge.stop()
