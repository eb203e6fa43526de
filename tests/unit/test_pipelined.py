"""Pipelined script calls: one round trip, and a flushed script cache costs nothing."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from bridge.store.pipelined import run_scripts, run_scripts_or_raise
from bridge.store.redis import RedisStore

INCR_BY = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
FAIL = "return redis.error_reply('ERR nope')"


async def test_results_in_order_across_a_flushed_cache(store: RedisStore) -> None:
    """Calls run in order; after SCRIPT FLUSH (a restarted Redis) each runs exactly once."""
    client = store.client
    incr = client.register_script(INCR_BY)
    key = f"{store.keys.outbox}:n"
    assert await run_scripts(client, [(incr, [key], [1]), (incr, [key], [2])]) == [1, 3]
    await client.script_flush()
    assert await run_scripts(client, [(incr, [key], [10]), (incr, [key], [100])]) == [13, 113]
    assert int(await client.get(key)) == 113


async def test_errors_are_per_call(store: RedisStore) -> None:
    """One failing call does not hide the others' results; the raising form raises it."""
    client = store.client
    incr = client.register_script(INCR_BY)
    fail = client.register_script(FAIL)
    key = f"{store.keys.outbox}:m"
    ok, err = await run_scripts(client, [(incr, [key], [1]), (fail, [key], [])])
    assert ok == 1 and isinstance(err, ResponseError)
    with pytest.raises(ResponseError):
        await run_scripts_or_raise(client, [(incr, [key], [1]), (fail, [key], [])])
    assert int(await client.get(key)) == 2


async def test_a_claim_after_a_flushed_cache_reads_and_claims(store: RedisStore) -> None:
    """A claim's read (every source's backlog heads in one script call) and its script
    both load again after SCRIPT FLUSH; so does the read sent with the last claim."""
    from bridge.model import WatchKey

    now = 1_800_000_000.0
    for i in range(6):
        await store.register(WatchKey("fs" if i % 2 else "td", "users", f"j{i}"), now)
    limits = {"fs": (0.0, 1), "td": (0.0, 1)}
    first = await store.claim(now, 30, 2, limits)
    await store.client.script_flush()
    second = await store.claim(now, 30, 2, limits)
    await store.client.script_flush()
    store._ahead = None  # no read-ahead: the claim's own read meets the flushed cache
    third = await store.claim(now, 30, 2, limits)
    ids = [c.watch.id for c in (*first, *second, *third)]
    assert len(ids) == 6 == len(set(ids))


async def test_a_claim_among_many_sources_after_a_flushed_cache(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Among many sources the heads of the ready ones are read after the claim's read,
    with the sources of its due watches: that call loads its script again too."""
    from bridge.model import WatchKey
    from bridge.store import redis as redis_store

    monkeypatch.setattr(redis_store, "FEW_SOURCES", 1)
    now = 1_800_000_000.0
    limits = {f"s{i}": (0.0, 1) for i in range(5)}
    for i in range(6):
        await store.register(WatchKey(f"s{i % 3}", "users", f"j{i}"), now)
    await store.sources.pause("s0", 0.2)
    assert len(await store.claim(now, 30, 10, limits)) == 4  # s0's two wait: paused
    await store.client.delete(store.keys.source_pause("s0"))
    await store.client.zadd(store.keys.ready, {"s0": 0})  # as when the pause ends
    await store.client.script_flush()
    store._ahead = None
    assert sorted(c.watch.job_id for c in await store.claim(now, 30, 10, limits)) == ["j0", "j3"]
