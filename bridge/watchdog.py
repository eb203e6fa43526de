"""Redis is a dependency that fails: this module notices, says so once, and repairs.

Every second a process (1) measures its clock against Redis server time, (2) checks
the data marker: a marker gone while bridges run means Redis lost its data (restarted
empty, failed over to an empty replica, flushed), and (3) tracks reachability. Lost
data is counted and logged once, then what the process can rebuild is rebuilt: the
outbox consumer group, the static subscriptions, the subscription cache. Outages are
logged as one line when they start and one when they end, never a traceback per tick.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

import structlog

from bridge.clock import ServerClock
from bridge.metrics import Metrics
from bridge.outage import OutageLog
from bridge.store.redis import RedisStore

log = structlog.get_logger("bridge.watchdog")

SKEW_WARN_S = 1.0  # a local clock further off Redis than this is worth a warning
STALE_AFTER_S = 10.0  # no successful check for this long: not ready


class Watchdog:
    def __init__(
        self,
        *,
        store: RedisStore,
        clock: ServerClock | None,
        metrics: Metrics,
        outage: OutageLog,
        on_data_lost: Callable[[], Awaitable[None]],
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._outage = outage
        self._on_data_lost = on_data_lost
        self._skewed = False
        self._last_ok = 0.0
        self.data_lost = 0  # times this process saw the marker gone
        self._seen: str | None = None  # the marker as this process last saw it
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """At start: anchor the clock, and write the marker of a new deployment."""
        await self._sync_clock()
        value = _marker_value()
        if await self._store.claim_marker(value):
            log.info("redis_marker_written", message="a new deployment, or Redis started empty")
            self._seen = value
        else:
            self._seen = await self._store.get_marker()
        self._last_ok = time.monotonic()

    async def tick(self) -> None:
        try:
            await self._sync_clock()
            if await self._store.get_marker() != self._seen:
                await self.recover()
        except Exception as exc:  # Redis down: said once, checked again next tick
            self._outage.failed("watchdog", exc)
            return
        self._outage.succeeded()
        self._last_ok = time.monotonic()

    @property
    def healthy(self) -> bool:
        return time.monotonic() - self._last_ok < STALE_AFTER_S

    async def recover(self) -> None:
        """Rebuild what this process can after Redis lost data. A loss is a marker gone,
        or one that differs from what this process saw (another process, started after
        the loss, wrote it first); counted and logged once per process. Serialised: the
        watchdog and a fan-out meeting a missing group may both ask."""
        async with self._lock:
            current = await self._store.get_marker()
            lost = current is None or current != self._seen
            if lost:
                self.data_lost += 1
                self._metrics.redis_data_lost.inc()
                log.error(
                    "redis_data_lost",
                    message="Redis lost the bridge's data (restarted empty, failover or "
                    "flush); watches and subscriptions created through the API are gone; "
                    "rebuilding the consumer group and static subscriptions",
                )
            await self._on_data_lost()
            await self._store.claim_marker(_marker_value())
            self._seen = await self._store.get_marker()
            if lost:
                log.warning("redis_data_rebuilt")

    async def _sync_clock(self) -> None:
        if self._clock is None:  # an injected test clock
            return
        sent = self._clock.mark()
        server = await self._store.server_time()
        if not self._clock.adjust(server, sent):
            return  # a slow round trip: keep the last good anchor
        offset = self._clock.offset_s
        self._metrics.clock_offset.set(offset)
        skewed = abs(offset) > SKEW_WARN_S
        if skewed != self._skewed:
            self._skewed = skewed
            if skewed:
                log.warning(
                    "clock_skew",
                    offset_s=round(offset, 3),
                    message="the local clock is off Redis server time; Redis time is used",
                )
            else:
                log.info("clock_skew_gone", offset_s=round(offset, 3))


def _marker_value() -> str:
    return f"{int(time.time())}-{secrets.token_hex(4)}"
