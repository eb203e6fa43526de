"""Per-source state, fleet-wide: the rate limiter, the 429 pause, health, the shared
OAuth token, and the leases on fleet-wide chores. On the watch store's connection and
key schema; every time it compares is Redis server time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import structlog

from bridge.clock import to_ms
from bridge.errors import NoSlot
from bridge.events import NO_EVENT
from bridge.model import Event
from bridge.sealing import Sealer, SealError
from bridge.store import codec
from bridge.store.coalescer import Coalescer
from bridge.store.keys import Keys
from bridge.store.redis_errors import translated

log = structlog.get_logger()


@dataclass(frozen=True)
class SourceHealth:
    healthy: bool
    reason: str | None
    since: float | None


@translated
class SourceStore:
    def __init__(
        self, client: Any, keys: Keys, run: dict[str, Any], sealer: Sealer | None = None
    ) -> None:
        """The watch store's connection, key schema, registered scripts and sealer."""
        self.client = client
        self.keys = keys
        self._sealer = sealer or Sealer()
        self._acquire = run["acquire"]
        self._pause = run["pause"]
        self._pause_left = run["pause_left"]
        self._time = run["time"]
        self._set_health = run["set_health"]
        self._delete_if_equals = run["delete_if_equals"]
        self._replace_if_equals = run["replace_if_equals"]
        self._extend_if_equals = run["extend_if_equals"]
        self._pauses: Coalescer[str, float] = Coalescer(self._flush_pauses)

    async def acquire(
        self, limiter: str, rate: float, burst: int, horizon_s: float, source: str | None = None
    ) -> float:
        """A slot for one request outside the claim (limiter: a source name, or
        "NAME:token"; source: whose 429 pause holds, the limiter by default), at most
        horizon_s ahead; the seconds to wait before sending. NoSlot when the source is
        paused or has no slot that soon (nothing is taken)."""
        k = self.keys
        verdict, ms = await self._acquire(
            keys=[
                k.source_gcra(limiter),
                k.source_pause(source or limiter),
                k.source_sent(limiter),
            ],
            args=[rate, burst, to_ms(horizon_s)],
        )
        if verdict != "ok":
            raise NoSlot(
                f"no slot of {limiter}'s budget now",
                retry_after_s=int(ms) / 1000,
                paused=verdict == "paused",
            )
        return int(ms) / 1000

    async def pause(self, source: str, seconds: float) -> None:
        await self._pause(keys=[self.keys.source_pause(source)], args=[max(1, to_ms(seconds))])

    async def pause_left(self, source: str) -> float:
        """Seconds left in the source's 429 pause (Redis server time), 0 when none; the
        checks of one moment go in one round trip."""
        return await self._pauses.call(source)

    async def _flush_pauses(self, sources: list[str]) -> list[float]:
        left = await self._pause_left(keys=[self.keys.source_pause(s) for s in sources])
        return [int(ms) / 1000 for ms in left]

    async def budget_used(self, source: str, rate: float) -> float | None:
        """Requests granted fleet-wide in the last full 10 s window (Redis server time),
        as a share of rate_limit times 10 s; None without a limit."""
        if rate <= 0:
            return None
        secs, _ = await self._time(keys=[self.keys.marker])  # the clock the limiter uses
        window = int(secs) // 10 - 1
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.keys.source_sent(source), str(window))
        pipe.get(self.keys.legacy_source_sent(source, window))
        sent, legacy = await pipe.execute()
        return (int(sent or 0) + int(legacy or 0)) / (rate * 10)

    async def set_health(
        self,
        source: str,
        healthy: bool,
        reason: str | None,
        now: float,
        event: Event | None = None,
        retention_s: float = 86400.0,
    ) -> bool:
        """Record a source's health and, when this call changed it, write `event` to the
        outbox in the same step (source.unhealthy / source.recovered: once per change,
        fleet-wide). True when this call changed it."""
        k = self.keys
        if event is None:  # nothing to announce: an event id that is never written
            event = NO_EVENT
        changed = await self._set_health(
            keys=[k.source_health(source), k.event(event.id), k.events, k.outbox],
            args=[
                "1" if healthy else "0",
                reason or "",
                now,
                to_ms(now),
                to_ms(retention_s),
                event.id,
                codec.event_to_json(event),
                event.type,
            ],
        )
        return bool(changed)

    async def get_health(self, source: str) -> SourceHealth:
        fields = cast(dict[str, str], await self.client.hgetall(self.keys.source_health(source)))
        if not fields:
            return SourceHealth(True, None, None)
        return SourceHealth(
            fields.get("healthy") != "0",
            fields.get("reason") or None,
            float(fields["since"]) if fields.get("since") else None,
        )

    # ------------------------------------------------------------------ tokens
    async def get_token(self, source: str) -> tuple[str, float] | None:
        """The shared access token and its remaining lifetime in seconds."""
        pipe = self.client.pipeline(transaction=False)
        key = self.keys.source_token(source)
        pipe.get(key)
        pipe.pttl(key)
        token, pttl = await pipe.execute()
        if token is None or int(pttl) <= 0:
            return None
        try:
            return self._sealer.open(str(token), _token_kind(source)), int(pttl) / 1000
        except SealError:  # a cache: fetched again rather than fail the poll
            log.warning("token_unreadable", source=source)
            return None

    async def set_token(self, source: str, token: str, ttl_s: float) -> None:
        sealed = self._sealer.seal(token, _token_kind(source))
        await self.client.set(self.keys.source_token(source), sealed, px=max(1, to_ms(ttl_s)))

    async def reseal_token(self, source: str) -> bool:
        """The cached access token sealed under the first key (`secrets rotate`); True
        when it was written again. One that cannot be opened is dropped (refetched)."""
        key = self.keys.source_token(source)
        stored = await self.client.get(key)
        if stored is None or self._sealer.is_current(str(stored)):
            return False
        try:
            fresh = self._sealer.seal(self._sealer.open(str(stored), _token_kind(source)),
                                      _token_kind(source))  # fmt: skip
        except SealError:
            await self._delete_if_equals(keys=[key], args=[str(stored)])
            return False
        return bool(await self._replace_if_equals(keys=[key], args=[str(stored), fresh]))

    async def drop_token(self, source: str, token: str) -> bool:
        """Forget the token only if no other replica has replaced it already (sealed, the
        stored value is compared, not the token: each sealing differs)."""
        key = self.keys.source_token(source)
        stored = await self.client.get(key)
        if stored is None:
            return False
        try:
            if self._sealer.open(str(stored), _token_kind(source)) != token:
                return False
        except SealError:
            pass  # unreadable: dropped like a stale one
        return bool(await self._delete_if_equals(keys=[key], args=[str(stored)]))

    async def lock_token_refresh(self, source: str, holder: str, ttl_s: float) -> bool:
        return bool(
            await self.client.set(
                self.keys.source_token_lock(source), holder, nx=True, px=to_ms(ttl_s)
            )
        )

    async def unlock_token_refresh(self, source: str, holder: str) -> None:
        await self._delete_if_equals(keys=[self.keys.source_token_lock(source)], args=[holder])

    async def try_lock(self, name: str, holder: str, ttl_s: float) -> bool:
        """A fleet-wide lease on a chore; True when this holder got it."""
        return bool(await self.client.set(self.keys.lock(name), holder, nx=True, px=to_ms(ttl_s)))

    async def extend_lock(self, name: str, holder: str, ttl_s: float) -> bool:
        """Renew the lease on a chore; False when this holder lost it."""
        return bool(
            await self._extend_if_equals(keys=[self.keys.lock(name)], args=[holder, to_ms(ttl_s)])
        )

    async def unlock(self, name: str, holder: str) -> None:
        await self._delete_if_equals(keys=[self.keys.lock(name)], args=[holder])


def _token_kind(source: str) -> str:
    return f"access token {source}"
