"""Watches spread over partitions (store/layout.py), behind the watch store's own
interface.

Each partition is a RedisStore of its own under its tag: a watch, its schedule (due
times, leases, backlogs, ready sources) and its events share one slot, so every script
stays on one node. What a watch's id names goes to its partition; what spans them is
merged (lists, counts) or taken in turns (claims: every replica claims from every
partition, starting one further each time, so none is starved). The fleet's state
(limiters, pauses, tokens, health, subscriptions) stays under the prefix's tag; a
partition's claim asks the fleet's limiters for its slots (store/grants.py).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis

from bridge.clock import to_ms
from bridge.model import Event, Watch, WatchKey
from bridge.sealing import Sealer
from bridge.store import codec
from bridge.store.grants import FleetLimiter
from bridge.store.layout import Layout
from bridge.store.redis import NEW_WATCH_HEAD_START_S, Claimed, RedisStore, WorkerRoom
from bridge.store.redis_errors import translated
from bridge.store.verdicts import Verdict


@translated
class PartitionedStore(RedisStore):
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        partitions: int,
        head_start_s: float = NEW_WATCH_HEAD_START_S,
        sealer: Sealer | None = None,
    ) -> None:
        super().__init__(client, prefix, head_start_s, sealer)
        self.layout = Layout(prefix, partitions)
        limiter = FleetLimiter(client, self.keys, self.scripts)
        self.shards = [
            RedisStore(client, prefix, head_start_s, self.sealer, tag=tag, limiter=limiter)
            for tag in self.layout.tags
        ]
        # the partition the next claim starts at: replicas start apart
        self._turn = random.randrange(len(self.shards))

    def shard(self, watch_id: str) -> RedisStore:
        return self.shards[self.layout.of(watch_id)]

    def _of_key(self, key: WatchKey) -> RedisStore:
        return self.shard(codec.watch_id(key.source, key.kind, key.job_id))

    # ---------------------------------------------------------------- markers
    async def claim_marker(self, value: str) -> bool:
        """The fleet's marker, then each partition's set to it: a partition (its
        primary) that lost its data is found and marked again; replicas starting
        together agree on the fleet's value."""
        wrote = await RedisStore.claim_marker(self, value)
        fleet = await RedisStore.get_marker(self)
        for shard in self.shards:
            if await RedisStore.get_marker(shard) != fleet:
                await self.client.set(shard.keys.marker, str(fleet))
                wrote = True
        return wrote

    async def get_marker(self) -> str | None:
        """The fleet's marker while every partition carries it; None when any lost it."""
        fleet = await RedisStore.get_marker(self)
        pipe = self.client.pipeline(transaction=False)
        for shard in self.shards:
            pipe.get(shard.keys.marker)
        found = await pipe.execute()
        return fleet if all(v == fleet for v in found) else None

    # ---------------------------------------------------------------- watches
    async def register(
        self, key: WatchKey, now: float, metadata: dict[str, str] | None = None
    ) -> tuple[Watch, bool]:
        return await self._of_key(key).register(key, now, metadata)

    async def register_many(
        self,
        keys: list[WatchKey],
        now: float,
        metadata: list[dict[str, str] | None] | None = None,
    ) -> list[tuple[Watch, bool]]:
        """One call per partition, all at once (a cluster's nodes in parallel)."""
        metas = metadata or [None] * len(keys)
        groups: dict[int, list[int]] = defaultdict(list)
        for i, key in enumerate(keys):
            groups[self.layout.of(codec.watch_id(key.source, key.kind, key.job_id))].append(i)
        answers = await asyncio.gather(
            *(
                self.shards[p].register_many([keys[i] for i in ids], now, [metas[i] for i in ids])
                for p, ids in groups.items()
            )
        )
        out: list[tuple[Watch, bool] | None] = [None] * len(keys)
        for ids, got in zip(groups.values(), answers, strict=True):
            for i, answer in zip(ids, got, strict=True):
                out[i] = answer
        return [answer for answer in out if answer is not None]

    async def register_discovered(self, key: WatchKey, now: float) -> bool:
        return await self._of_key(key).register_discovered(key, now)

    async def waiting_for_budget(self, watches: list[Watch]) -> dict[str, str]:
        found: dict[str, str] = {}
        for shard, group in self._grouped(watches, lambda w: w.id):
            found.update(await shard.waiting_for_budget(group))
        return found

    async def get_watch(self, watch_id: str) -> Watch | None:
        return await self.shard(watch_id).get_watch(watch_id)

    async def find_watch(self, key: WatchKey) -> Watch | None:
        return await self._of_key(key).find_watch(key)

    def _watch_indexes(self) -> list[str]:
        """Every partition's: listed oldest first across them, with one cursor."""
        return [s.keys.watches for s in self.shards]

    def _watch_key(self, watch_id: str) -> str:
        return self.shard(watch_id).keys.watch(watch_id)

    async def delete_watch(self, watch: Watch, retention_s: float = 7 * 86400.0) -> bool:
        return await self.shard(watch.id).delete_watch(watch, retention_s)

    # ------------------------------------------------------------------ claims
    async def claim(
        self,
        now: float,
        lease_s: float,
        limit: int,
        rate_limits: dict[str, tuple[float, int]] | None = None,
        horizon_s: float = 0.0,
        room: WorkerRoom | None = None,
    ) -> list[Claimed]:
        """From every partition with something to claim, starting one further than the
        last claim did: the first partitions cannot take every turn."""
        busy = await self._busy(now, horizon_s)
        n = len(self.shards)
        start = self._turn
        self._turn = (start + 1) % n  # when none is served
        out: list[Claimed] = []
        for step in range(n):
            p = (start + step) % n
            if not busy[p] or len(out) >= limit:
                continue
            got = await self.shards[p].claim(
                now, lease_s, limit - len(out), rate_limits, horizon_s, room
            )
            # the next claim starts after the last one served, not after an idle one
            # (else the first busy partition past idle ones would take most turns)
            self._turn = (p + 1) % n
            out += got
            if room is not None and got:
                room = room.after(Counter(c.watch.source for c in got))
        return out

    async def _busy(self, now: float, horizon_s: float) -> list[bool]:
        """Per partition, whether it has a lease run out, a watch due, or a source whose
        backlog its limiter may serve within the horizon: one pipeline for all."""
        now_ms = to_ms(now)
        pipe = self.client.pipeline(transaction=False)
        for s in self.shards:
            k = s.keys
            pipe.zrangebyscore(k.leases, "-inf", now_ms, start=0, num=1)
            pipe.zrangebyscore(k.due, "-inf", now_ms, start=0, num=1)
            pipe.zrangebyscore(k.ready, "-inf", now_ms + to_ms(horizon_s), start=0, num=1)
        found = await pipe.execute()
        return [any(found[3 * i : 3 * i + 3]) for i in range(len(self.shards))]

    async def reschedule(
        self,
        claimed: Claimed,
        updated: Watch,
        next_at: float,
        priority_at: float | None = None,
        *,
        keep_priority: bool = False,
    ) -> Verdict:
        return await self.shard(claimed.watch.id).reschedule(
            claimed, updated, next_at, priority_at, keep_priority=keep_priority
        )

    async def finish(
        self, claimed: Claimed, updated: Watch, event: Event, retention_s: float
    ) -> Verdict:
        return await self.shard(claimed.watch.id).finish(claimed, updated, event, retention_s)

    # ------------------------------------------------------------------ counts
    async def backlogs(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for shard in self.shards:
            total.update(await shard.backlogs())
        return dict(sorted(total.items()))

    async def watch_counts(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for shard in self.shards:
            total.update(await shard.watch_counts())
        return dict(total)

    async def trim(self, now: float, retention_s: float, max_age_s: float) -> None:
        for store in (self, *self.shards):
            await RedisStore.trim(store, now, retention_s, max_age_s)

    def _grouped(
        self, items: Iterable[Any], id_of: Callable[[Any], str]
    ) -> list[tuple[RedisStore, list[Any]]]:
        groups: dict[int, list[Any]] = defaultdict(list)
        for item in items:
            groups[self.layout.of(id_of(item))].append(item)
        return [(self.shards[p], group) for p, group in groups.items()]
