"""Discovery: watch every new job of a source whose upstream lists them (Talkdesk's
imports list), without anyone registering it.

Every `discover_interval` one replica (a fleet-wide lock, renewed at each page) pages
through the imports list inside the source's rate budget (each page takes a slot of
the same limiter as the polls; a 429 pauses the source as for a poll), and registers
each import created within `discover_since`. Registration is idempotent (source + kind
+ job id), so replicas, restarts and overlapping pages never watch an import twice; an
import whose watch finished, or was deleted by an operator, is found by its key and
not watched again (discover_since never exceeds the watch's retention: settings).
The list's order is not documented: a look stops early at a page of imports all older
than the window only when that page runs newest first; otherwise it reads every page
(at most MAX_PAGES). An import the bridge cannot read is skipped, not the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from bridge.clock import Clock
from bridge.errors import NoSlot, RateLimitedError, UpstreamError, failure_name
from bridge.job_ids import usable_job_id
from bridge.metrics import Metrics
from bridge.model import WatchKey
from bridge.poll.poller import parse_time
from bridge.poll.ratelimit import limiter_burst, outside_claim_wait_s
from bridge.providers.base import Discoverable, ListPage, classify, decode_json
from bridge.providers.http import HttpClient
from bridge.store.redis import RedisStore

log = structlog.get_logger("bridge.discovery")

# Pages read per look at most: 5,000 imports, far beyond a day of a busy account.
MAX_PAGES = 100
# New watches per look at most: a hostile or broken list cannot make one look endless
# (the rest are found at the next look).
MAX_NEW_PER_LOOK = 1000


@dataclass
class DiscoveredSource:
    name: str
    provider: Discoverable
    rate_limit: float
    burst: int
    since_s: float
    every_s: float
    max_watches: int = 10_000  # jobs watched within window_s at most
    window_s: float = 86400.0  # poll.max_age: a discovered watch lives no longer
    last_run: float = float("-inf")  # monotonic


class Discovery:
    def __init__(
        self,
        *,
        store: RedisStore,
        http: HttpClient,
        sources: list[DiscoveredSource],
        clock: Clock,
        on_registered: Callable[[], object] = lambda: None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._http = http
        self._sources = sources
        self._clock = clock
        self._on_registered = on_registered
        self.registered = 0  # new watches this process made (tests, metrics)
        self._stopping = False
        self._looking: asyncio.Task[None] | None = None

    def set_sources(self, sources: list[DiscoveredSource]) -> None:
        """The sources as they are now (one defined, changed or deleted at run time);
        an unchanged one keeps its place in time (no extra look)."""
        before = {s.name: s for s in self._sources}
        self._sources = [
            before[s.name] if s.name in before and before[s.name].provider is s.provider else s
            for s in sources
        ]

    async def stop(self, within_s: float = 1.0) -> None:
        """Finish no more looks (the bridge is stopping): a look under way ends at its
        next page (it releases its lock), or is cancelled after within_s."""
        self._stopping = True
        looking = self._looking
        if looking is None or looking.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(looking), within_s)
        except TimeoutError:
            looking.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(looking, 0.5)
        except Exception:  # noqa: S110 - its failure was logged by the look itself
            pass

    async def tick(self) -> None:
        """Start a look at the sources whose interval has passed, unless one is still
        running (the ticker calls this every second; a long look never holds it)."""
        if self._stopping or (self._looking is not None and not self._looking.done()):
            return
        if any(time.monotonic() - src.last_run >= src.every_s for src in self._sources):
            self._looking = asyncio.create_task(self._look_all(), name="discovery")

    async def _look_all(self) -> None:
        for src in self._sources:
            if self._stopping or time.monotonic() - src.last_run < src.every_s:
                continue
            src.last_run = time.monotonic()
            try:
                await self.discover(src)
            except RateLimitedError as exc:  # the whole source waits, as for a poll
                log.warning("source_paused", source=src.name, retry_after_s=exc.retry_after_s)
                try:
                    await self._store.sources.pause(src.name, exc.retry_after_s)
                except Exception as failed:  # Redis away: the next 429 pauses it again
                    log.warning("discovery_failed", source=src.name, error=failure_name(failed))
            except (UpstreamError, NoSlot) as exc:
                log.info("discovery_stopped", source=src.name, error=str(exc))
            except Exception as exc:  # Redis away, an answer nobody foresaw: a line
                log.warning("discovery_failed", source=src.name, error=failure_name(exc))

    async def discover(self, src: DiscoveredSource) -> int:
        """One look at the list; returns the watches it added."""
        holder = secrets.token_hex(8)
        # renewed at each page, long enough for one page's wait for a slot and request
        wait_s = outside_claim_wait_s(src.rate_limit)
        lock, lease_s = f"discover:{src.name}", max(60.0, src.every_s, 2 * wait_s + 60.0)
        if not await self._store.sources.try_lock(lock, holder, lease_s):
            return 0  # another replica is looking right now
        added = refused = 0
        try:
            now = self._clock.now()
            room = src.max_watches - await self._store.discovered_since(
                src.name, now - src.window_s
            )
            kind = src.provider.kinds[0]
            since = self._clock.now() - src.since_s
            url: str | None = src.provider.list_url(kind)
            for page in range(MAX_PAGES):
                if url is None or self._stopping or added >= MAX_NEW_PER_LOOK:
                    break
                if page and not await self._store.sources.extend_lock(lock, holder, lease_s):
                    break  # the lease ran out and another replica looks now
                listed = await self._page(src, url)
                if listed.foreign_host is not None:
                    # the link named another host: followed on the configured one
                    log.info(
                        "discovery_link_rehomed", source=src.name, host=listed.foreign_host[:100]
                    )
                    self._count("discovery_link_rehomed")
                items = listed.items
                url = listed.next_url if listed.next_url != url else None
                older = 0
                for job_id, created in items:
                    if self._stopping or added >= MAX_NEW_PER_LOOK:
                        break
                    created_at = parse_time(created)
                    # undated imports are outside any window: nothing says they are new
                    if created_at is None or created_at < since or not usable_job_id(job_id):
                        older += 1
                        continue
                    key = WatchKey(src.name, kind, job_id)
                    if added >= room:  # the cap: only a job not watched yet is refused
                        refused += not await self._store.was_discovered(key)
                        continue
                    if await self._store.register_discovered(key, self._clock.now()):
                        await self._store.note_discovered(key, self._clock.now(), src.window_s)
                        added += 1
                        self.registered += 1
                if added:
                    self._on_registered()  # poll what this page found without waiting
                if items and older == len(items) and newest_first(items):
                    break  # the rest is older still
        finally:
            await self._store.sources.unlock(lock, holder)
            if added:
                log.info("imports_discovered", source=src.name, watches=added)
            if refused:
                log.warning(
                    "discovery_capped",
                    source=src.name,
                    not_watched=refused,
                    max_watches=src.max_watches,
                )
                self._count("discovery_cap", refused)
        return added

    def _count(self, guard: str, n: int = 1) -> None:
        if self._metrics is not None:
            self._metrics.guarded.labels(guard).inc(n)

    async def _page(self, src: DiscoveredSource, url: str) -> ListPage:
        """GET one page through the source's limiter (and a retry after a 401)."""
        for attempt in range(2):
            delay = await self._store.sources.acquire(
                src.name,
                src.rate_limit,
                limiter_burst(src.burst),
                outside_claim_wait_s(src.rate_limit),
            )
            if delay > 0:
                await asyncio.sleep(delay)
            headers = await src.provider.auth_headers()
            answer = await self._http.request("GET", url, headers=headers)
            retry = answer.status == 401 and attempt == 0
            if retry and await src.provider.on_unauthorized(headers):
                continue
            if not 200 <= answer.status < 300:
                raise classify(answer, self._clock.now())
            return src.provider.parse_list(decode_json(answer.body), url)
        raise classify(answer, self._clock.now())


def newest_first(items: list[tuple[str, str | None]]) -> bool:
    """Whether a page's dated imports run from newest to oldest (ties allowed); a page
    with fewer than two dated imports says nothing, and is not taken as sorted."""
    dated = [t for _, created in items if (t := parse_time(created)) is not None]
    return len(dated) >= 2 and all(a >= b for a, b in itertools.pairwise(dated))
