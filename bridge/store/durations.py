"""Learned job durations in Redis: shared by every replica, bounded, ageing.

Per source and kind, two hashes of at most poll/duration_policy.BUCKETS counters each (two
generations of GENERATION jobs); a histogram nobody updates for IDLE_S is dropped.
Replicas read them through a short local cache: the policy needs the shape, not the
last job.
"""

from __future__ import annotations

import time
from typing import cast

from bridge.poll.duration_policy import Durations, bucket_of
from bridge.store.redis import RedisStore
from bridge.store.redis_errors import translated

GENERATION = 500
IDLE_S = 30 * 86400.0
CACHE_S = 30.0


@translated
class DurationStore:
    def __init__(self, store: RedisStore) -> None:
        self._client = store.client
        self._keys = store.keys
        self._record = store.scripts["record_duration"]
        self._cache: dict[tuple[str, str], tuple[float, Durations]] = {}

    async def record(self, source: str, kind: str, duration_s: float) -> None:
        k = self._keys
        await self._record(
            keys=[k.durations(source, kind, "current"), k.durations(source, kind, "previous")],
            args=[bucket_of(duration_s), GENERATION, int(IDLE_S * 1000)],
        )

    async def load(self, source: str, kind: str) -> Durations:
        """Both generations merged; cached for CACHE_S."""
        cached = self._cache.get((source, kind))
        if cached is not None and time.monotonic() - cached[0] < CACHE_S:
            return cached[1]
        k = self._keys
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(k.durations(source, kind, "current"))
        pipe.hgetall(k.durations(source, kind, "previous"))
        generations = cast(list[dict[str, str]], await pipe.execute())
        counts: dict[int, float] = {}
        for generation in generations:
            for field, value in generation.items():
                if field.isdigit():
                    counts[int(field)] = counts.get(int(field), 0.0) + float(value)
        durations = Durations.from_counts(counts)
        self._cache[(source, kind)] = (time.monotonic(), durations)
        return durations
