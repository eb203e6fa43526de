"""The console's trends in Redis: a hash per five-minute bucket that every replica adds
its tally to, expiring after the window the charts draw (bridge/trends.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from bridge.clock import to_ms
from bridge.store.redis import RedisStore
from bridge.store.redis_errors import translated
from bridge.trends import BUCKET_S, KEEP_S, Trends, bucket_of


@translated
class TrendStore:
    """On the watch store's connection; keys from its key schema."""

    def __init__(self, store: RedisStore) -> None:
        self._client = store.client
        self._keys = store.keys

    async def add(self, counts: Mapping[str, int], now: float) -> None:
        """A tally, into the bucket of now (one round trip)."""
        if not counts:
            return
        key = self._keys.trend(bucket_of(now))
        pipe = self._client.pipeline(transaction=False)
        for name, n in counts.items():
            pipe.hincrby(key, name, n)
        pipe.pexpire(key, to_ms(KEEP_S))
        await pipe.execute()

    async def read(self, now: float, window_s: int) -> Trends:
        """The window ending at now, every bucket (one round trip)."""
        last = bucket_of(now)
        starts = list(range(last - window_s + BUCKET_S, last + 1, BUCKET_S))
        pipe = self._client.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(self._keys.trend(start))
        answers = cast(list[dict[str, str]], await pipe.execute())
        read = {s: {f: int(v) for f, v in a.items()} for s, a in zip(starts, answers, strict=True)}
        return Trends.of(now, window_s, read)
