"""Store faults found in review: equal-score pagination, orphaned lookup keys.
Run on fakeredis and on a real redis-server."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest

from bridge.clock import to_ms
from bridge.errors import NoSlot
from bridge.model import Delivery, DeliveryStatus, WatchKey
from bridge.store.deliveries import DeliveryStore, delivery_id
from bridge.store.redis import RedisStore

NOW = 1_800_000_000.0


async def test_listing_walks_thousands_of_equal_scores(store: RedisStore) -> None:
    """2,500 entries on one millisecond are listed once each, in pages, none skipped."""
    index = store.keys.watches
    members = {f"w_{i:05d}": 1000 for i in range(2500)}
    await store.client.zadd(index, members)

    async def load(ids: list[str]) -> list[str | None]:
        return list(ids)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        items, cursor = await store.paginate(index, cursor, 300, load, lambda _: True)
        seen += items
        pages += 1
        if cursor is None:
            break
    assert len(seen) == 2500 and len(set(seen)) == 2500
    assert pages >= 9


async def test_listing_resumes_after_the_cursor_entry_is_gone(store: RedisStore) -> None:
    """A cursor whose entry was deleted resumes right after where it was, same score or not."""
    index = store.keys.events
    await store.client.zadd(index, {"a": 1, "b": 5, "c": 5, "d": 5, "e": 9})

    async def load(ids: list[str]) -> list[str | None]:
        return list(ids)

    first, cursor = await store.paginate(index, None, 2, load, lambda _: True)
    assert first == ["a", "b"] and cursor == (5, "b")
    await store.client.zrem(index, "b")
    rest, _ = await store.paginate(index, cursor, 10, load, lambda _: True)
    assert rest == ["c", "d", "e"]


async def test_deliveries_of_one_fan_out_are_all_listed(store: RedisStore) -> None:
    """300 deliveries created in the same millisecond are all listed by status filter."""
    deliveries = DeliveryStore(store)
    batch = [
        Delivery(
            id=delivery_id(f"evt_{i}", "sub_x"),
            event_id=f"evt_{i}",
            subscription_id="sub_x",
            status=DeliveryStatus.PENDING,
            created_at=NOW,
            detected_at=NOW,
            next_attempt_at=NOW,
        )
        for i in range(300)
    ]
    await deliveries.add_deliveries(batch, NOW)
    seen: list[str] = []
    cursor = None
    while True:
        items, cursor = await deliveries.list_deliveries(
            subscription_id="sub_x", cursor=cursor, limit=50
        )
        seen += [d.id for d in items]
        if cursor is None:
            break
    assert sorted(seen) == sorted(d.id for d in batch)


async def test_a_claim_reserves_slots_ahead_within_the_horizon(store: RedisStore) -> None:
    """One claim hands out every slot of the next half second, spaced by the rate, on
    Redis server time; a second claim at once gets only what is left of the horizon."""
    for i in range(20):
        await store.register(WatchKey("fs", "users", f"r{i}"), NOW)
    claimed = await store.claim(NOW, 30, 20, {"fs": (10.0, 1)}, horizon_s=0.5)
    delays = [c.delay_s for c in claimed]
    assert len(claimed) in (5, 6)  # 0, 0.1, …, 0.5 s (server time moves meanwhile)
    assert delays == sorted(delays) and delays[0] < 0.05
    assert all(0.08 < b - a < 0.12 for a, b in pairwise(delays))
    again = await store.claim(NOW, 30, 20, {"fs": (10.0, 1)}, horizon_s=0.5)
    assert len(again) <= 1


async def test_tickets_outside_the_claim_share_the_budget(store: RedisStore) -> None:
    """acquire() takes the next slot of the same limiter, spaced by the rate, within its
    horizon; past it, or while the source is paused, NoSlot and nothing is taken."""
    slots, waits = [], []  # each slot on Redis server time, within the span of its call
    for _ in range(4):
        before = await store.server_time()
        waits.append(await store.sources.acquire("fs", 4.0, 1, 1.0))
        after = await store.server_time()
        slots.append((before + waits[-1], after + waits[-1]))
    assert waits[0] == 0  # a fresh limiter: the first slot is now
    for (early_a, late_a), (early_b, late_b) in pairwise(slots):
        assert early_b - late_a - 0.002 <= 0.25 <= late_b - early_a + 0.002  # the rate
    with pytest.raises(NoSlot):
        await store.sources.acquire("fs", 4.0, 1, 0.5)  # the next slot is about 1 s away
    await store.sources.pause("td", 30)
    with pytest.raises(NoSlot) as info:
        await store.sources.acquire("td", 4.0, 1, 60.0)
    assert 29 < info.value.retry_after_s <= 30
    assert await store.client.get(store.keys.source_gcra("td")) is None  # nothing taken


async def test_budget_use_is_counted_per_window(store: RedisStore) -> None:
    """Grants of claims and tickets count toward the source's 10 s window, fleet-wide."""
    for i in range(3):
        await store.register(WatchKey("fs", "users", f"u{i}"), NOW)
    claimed = await store.claim(NOW, 30, 10, {"fs": (100.0, 1)}, horizon_s=1)
    await store.sources.acquire("fs", 100.0, 1, 1.0)
    secs, _ = await store.client.time()
    window = int(secs) // 10
    windows = [str(w) for w in (window - 1, window)]
    counted = sum(  # a window may turn
        int(v or 0) for v in await store.client.hmget(store.keys.source_sent("fs"), windows)
    )
    assert counted == len(claimed) + 1 == 4
    assert await store.sources.budget_used("fs", 0) is None


async def test_one_sources_backlog_does_not_hold_another_back(store: RedisStore) -> None:
    """600 due watches of a source out of budget ahead of one of another source: the
    claim looks past them (queuing them behind their limiter) and takes the other."""
    pipe = store.client.pipeline()
    for i in range(600):
        await store.register(WatchKey("slow", "users", f"s{i}"), NOW - 10)
    await pipe.execute()
    await store.register(WatchKey("fast", "users", "f"), NOW)
    limits = {"slow": (1.0, 1), "fast": (100.0, 1)}
    claimed = await store.claim(NOW, 30, 10, limits)
    sources = sorted(c.watch.source for c in claimed)
    assert sources == ["fast", "slow"]  # the slow source's one slot, and the fast one
    assert await store.claim(NOW, 30, 10, limits) == []  # the backlog is queued behind


async def test_token_slots_respect_the_sources_pause(store: RedisStore) -> None:
    """The token limiter has its own budget but the source's 429 pause."""
    assert await store.sources.acquire("td:token", 0.5, 3, 2.0, source="td") < 0.05
    await store.sources.pause("td", 30)
    with pytest.raises(NoSlot) as info:
        await store.sources.acquire("td:token", 0.5, 3, 2.0, source="td")
    assert info.value.paused


async def test_new_registrations_go_first_but_starve_nobody(store: RedisStore) -> None:
    """Under contention a new watch is claimed before watches overdue by less than the
    head start, but after one overdue by more."""
    from bridge.store.redis import NEW_WATCH_HEAD_START_S

    old = NOW - NEW_WATCH_HEAD_START_S - 60
    await store.register(WatchKey("fs", "users", "long-overdue"), old - NEW_WATCH_HEAD_START_S)
    [c] = await store.claim(old - NEW_WATCH_HEAD_START_S, 30, 1)
    assert await store.reschedule(c, c.watch, old) == "ok"  # due 11 minutes ago
    await store.register(WatchKey("fs", "users", "overdue"), NOW - 120)
    [c] = await store.claim(NOW - 120, 30, 1)
    assert await store.reschedule(c, c.watch, NOW - 60) == "ok"  # due a minute ago
    await store.register(WatchKey("fs", "users", "new"), NOW)
    order = [c.watch.job_id for c in await store.claim(NOW, 30, 3)]
    assert order == ["long-overdue", "new", "overdue"]


async def test_token_requests_are_budgeted_even_without_a_rate_limit(store: RedisStore) -> None:
    """A source with rate_limit = 0 (no limit on polls) still has the token budget and
    the pause: a token request during a 429 pause is not sent."""
    from bridge.app import token_slot

    await store.sources.pause("free", 30)
    with pytest.raises(NoSlot) as info:
        await token_slot(store, "free")
    assert info.value.paused


async def test_a_draining_backlog_keeps_its_turns_within_one_claim(store: RedisStore) -> None:
    """Two watches wait in a source's backlog and six more fall due: with budget for
    all, one claim takes all eight (the backlog's head is read live, so watches this
    claim queues behind the backlog are handed out in the same claim)."""
    for i in range(2):
        await store.register(WatchKey("td", "users", f"b{i}"), NOW - 10)
    await store.sources.pause("td", 0.2)
    assert await store.claim(NOW, 30, 10, {"td": (100.0, 10)}) == []  # both to the backlog
    assert await store.backlogs() == {"td": 2}
    await store.client.delete(store.keys.source_pause("td"))
    for i in range(6):
        await store.register(WatchKey("td", "users", f"d{i}"), NOW)
    claimed = await store.claim(NOW, 30, 10, {"td": (100.0, 10)}, horizon_s=1)
    assert len(claimed) == 8
    assert await store.backlogs() == {}


async def test_a_claim_whose_candidates_another_replica_took_reads_again(
    store: RedisStore,
) -> None:
    """Between a claim's read and its script another replica takes every watch it read,
    and new ones fall due: the claim reads again and takes those, rather than coming
    back empty as if nothing were due."""
    for i in range(3):
        await store.register(WatchKey("fs", "users", f"a{i}"), NOW - 5)
    # what this replica read before its script...
    pipe = store.client.pipeline(transaction=False)
    store._queue_read(pipe, to_ms(NOW), 10, {}, 32, 0)
    read = store._candidates(await pipe.execute(), to_ms(NOW), 10, {}, 32)
    # ...then the other replica takes all of it, and new ones fall due
    other = RedisStore(store.client, store.keys.prefix)
    raced = [len(await other.claim(NOW, 30, 10))]
    for i in range(3):
        await other.register(WatchKey("fs", "users", f"b{i}"), NOW - 1)
    store._ahead = replace(read, read_all=False)  # as a busy queue's read-ahead would be
    claimed = await store.claim(NOW, 30, 10)
    assert raced == [3]
    assert sorted(c.watch.job_id for c in claimed) == ["b0", "b1", "b2"]


async def test_budget_use_reads_what_older_replicas_count(store: RedisStore) -> None:
    """During a rolling upgrade, older replicas still count their grants in one key per
    window: the budget use adds both."""
    secs, _ = await store.client.time()
    window = int(secs) // 10 - 1
    await store.client.hset(store.keys.source_sent("fs"), str(window), 3)
    await store.client.set(store.keys.legacy_source_sent("fs", window), 2)
    assert await store.sources.budget_used("fs", 1.0) == 0.5


async def test_a_busy_queue_is_claimed_in_one_round_trip_a_claim(store: RedisStore) -> None:
    """While more is due than a claim reads, the next claim works on what was read in
    the same round trip as the previous script; watches another replica took from that
    read meanwhile are passed over and the claim still fills up."""
    for i in range(100):
        await store.register(WatchKey("fs", "users", f"q{i}"), NOW - 10)
    reads: list[int] = []
    queue_read = store._queue_read

    def counted(*args: Any) -> None:
        reads.append(1)
        queue_read(*args)

    store._queue_read = counted  # type: ignore[method-assign]
    first = await store.claim(NOW, 30, 4)  # (loads the script where it is not yet)
    assert len(first) == 4
    reads.clear()
    store._ahead = None  # as after a restart
    second = await store.claim(NOW, 30, 4)
    assert len(second) == 4 and len(reads) == 2  # a read, then the script and the next read
    reads.clear()
    more = await store.claim(NOW, 30, 4)
    assert len(more) == 4 and len(reads) == 1  # the script and the next read alone
    second += more
    other = RedisStore(store.client, store.keys.prefix)
    taken = await other.claim(NOW, 30, 40)  # what the read-ahead holds, and more
    third = await store.claim(NOW, 30, 4)
    ids = [c.watch.id for c in (*first, *second, *taken, *third)]
    assert len(third) == 4 and len(set(ids)) == len(ids)  # none leased twice


async def test_a_backlog_head_changed_since_the_read_keeps_its_turn(store: RedisStore) -> None:
    """A claim works on a read made before another replica put a better watch at the
    head of a source's backlog: it stops at the head it was not given and reads again,
    so the source still gets its turn in this claim, best watch first."""
    limits = {"fs": (100.0, 10), "td": (0.0, 1)}
    for i in range(3):
        await store.register(WatchKey("fs", "users", f"b{i}"), NOW - 10)
    await store.sources.pause("fs", 0.2)
    assert await store.claim(NOW, 30, 10, limits) == []  # fs's three wait in its backlog
    await store.client.delete(store.keys.source_pause("fs"))
    for i in range(40):
        await store.register(WatchKey("td", "users", f"t{i}"), NOW)
    pipe = store.client.pipeline(transaction=False)
    store._queue_read(pipe, to_ms(NOW), 4, limits, 32, 0)
    stale = store._candidates(await pipe.execute(), to_ms(NOW), 4, limits, 32)
    best, _ = await store.register(WatchKey("fs", "users", "best"), NOW - 20)
    other = RedisStore(store.client, store.keys.prefix)
    await other.sources.pause("fs", 0.2)
    await other.claim(NOW, 30, 1, limits)  # queues "best" first in fs's backlog
    head = await store.client.zrange(store.keys.source_backlog("fs"), 0, 0)
    assert head == [best.id] and best.id not in stale.heads["fs"]
    await store.client.delete(store.keys.source_pause("fs"))
    store._ahead = replace(stale, read_all=False)
    claimed = await store.claim(NOW, 30, 4, limits, horizon_s=1)
    assert best.id in [c.watch.id for c in claimed]


async def test_a_source_no_longer_configured_is_read_before_the_script(
    store: RedisStore,
) -> None:
    """Its backlog heads need a read of their own: that read comes before the script,
    never after it, so what the script granted always reaches the caller."""
    for i in range(2):
        await store.register(WatchKey("gone", "users", f"g{i}"), NOW - 10)
    await store.sources.pause("gone", 0.2)
    assert await store.claim(NOW, 30, 10, {"gone": (0.0, 1)}) == []
    await store.client.delete(store.keys.source_pause("gone"))
    await store.client.zadd(store.keys.ready, {"gone": 0})  # as when the pause ends
    claimed = await store.claim(NOW, 30, 10, {"fs": (0.0, 1)})  # "gone" left the config
    assert sorted(c.watch.job_id for c in claimed) == ["g0", "g1"]


def test_a_cluster_in_a_failover_is_unavailable_a_misconfigured_one_an_error() -> None:
    """What a cluster answers while a slot has no primary or moves (past the client's
    retries), or when no node answers, passes: 503. A client error does not."""
    from redis.exceptions import (
        ClusterDownError,
        MaxConnectionsError,
        MovedError,
        RedisClusterException,
        SlotNotCoveredError,
        TryAgainError,
    )

    from bridge.errors import StoreError, StoreUnavailable
    from bridge.store.redis_errors import store_error

    passing = [
        ClusterDownError("CLUSTERDOWN The cluster is down"),
        TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
        MovedError("3999 127.0.0.1:6381"),
        SlotNotCoveredError("slot 12 is not covered"),
        MaxConnectionsError("Too many connections"),
        RedisClusterException(
            "Redis Cluster cannot be connected. Please provide at least one reachable node"
        ),
    ]
    for exc in passing:
        assert isinstance(store_error(exc), StoreUnavailable), exc
    wrong = store_error(RedisClusterException("ClusterPipeline: bad command stack"))
    assert isinstance(wrong, StoreError) and not isinstance(wrong, StoreUnavailable)


async def test_scripts_lost_again_after_loading_them_are_an_outage(store: RedisStore) -> None:
    """Redis restarted empty between loading a script and running it (the client loads
    once on NOSCRIPT, the second run meets a server without it again): an outage that
    passes, retried by every loop, never a bug's traceback."""
    from bridge.errors import StoreUnavailable

    real_load = store.client.script_load

    async def load_then_restart(script: str) -> str:
        sha = str(await real_load(script))
        await store.client.script_flush()  # the restart: the cache is empty again
        return sha

    await store.client.script_flush()
    store.client.script_load = load_then_restart
    with pytest.raises(StoreUnavailable):
        await store.sources.pause("fs", 5)


async def test_a_failover_answer_inside_a_read_is_the_calls_error(store: RedisStore) -> None:
    """A cluster pipeline read without raising gives a failover's error in place of an
    answer: the queue counts raise it (503), not a TypeError (500); a missing outbox
    group alone still counts as nothing pending."""
    from redis.exceptions import ClusterDownError, ResponseError

    from bridge.errors import StoreUnavailable
    from bridge.store.deliveries import DeliveryStore

    deliveries = DeliveryStore(store)
    assert (await deliveries.queue_counts([]))["outbox_unacked"] == 0  # no group yet
    real_pipeline = store.client.pipeline

    def answering(error: Exception, at: int) -> Any:
        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = real_pipeline(*args, **kwargs)
            execute = pipe.execute

            async def with_error(*a: Any, **kw: Any) -> list[Any]:
                answers = list(await execute(*a, **kw))
                answers[at] = error
                return answers

            pipe.execute = with_error
            return pipe

        return pipeline

    store.client.pipeline = answering(ClusterDownError("CLUSTERDOWN The cluster is down"), 0)
    with pytest.raises(StoreUnavailable):
        await deliveries.queue_counts([])
    store.client.pipeline = answering(ResponseError("NOGROUP No such key"), 4)
    assert (await deliveries.queue_counts([]))["outbox_unacked"] == 0
