"""The store's contracts, run on fakeredis, a real redis-server, a real Sentinel setup
and a real 3-primary cluster (tests/conftest.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from bridge.clock import to_ms
from bridge.events import outcome_event
from bridge.model import Outcome, Watch, WatchKey, WatchState
from bridge.poll.duration_policy import bucket_of
from bridge.store import codec
from bridge.store import redis as redis_store
from bridge.store.durations import GENERATION, DurationStore
from bridge.store.redis import NEW_WATCH_HEAD_START_S, Claimed, RedisStore

NOW = 1_800_000_000.0
KEY = WatchKey("fs", "users", "job-1")
pytestmark = pytest.mark.contract


async def test_register_is_idempotent(store: RedisStore) -> None:
    """The same source+kind+job_id registers once; the second call returns the same watch."""
    first, created = await store.register(KEY, NOW)
    again, created_again = await store.register(KEY, NOW + 5)
    assert created and not created_again
    assert again.id == first.id
    other, created_other = await store.register(WatchKey("fs", "events", "job-1"), NOW)
    assert created_other and other.id != first.id


async def test_claim_leases_each_due_watch_once(store: RedisStore) -> None:
    """A claimed watch is not claimed again until its lease expires."""
    watch, _ = await store.register(KEY, NOW)
    claimed = await store.claim(NOW, lease_s=30, limit=10)
    assert [c.watch.id for c in claimed] == [watch.id]
    assert await store.claim(NOW + 1, lease_s=30, limit=10) == []
    reclaimed = await store.claim(NOW + 31, lease_s=30, limit=10)
    assert [c.watch.id for c in reclaimed] == [watch.id]
    assert reclaimed[0].token > claimed[0].token


async def test_claim_skips_watches_not_yet_due(store: RedisStore) -> None:
    """Only watches whose due time has come are claimed."""
    await store.register(KEY, NOW)
    [c] = await store.claim(NOW, 30, 10)
    assert await store.reschedule(c, c.watch, NOW + 10) == "ok"
    assert await store.claim(NOW + 9, 30, 10) == []
    assert len(await store.claim(NOW + 10, 30, 10)) == 1


async def test_concurrent_reschedules_each_get_their_verdict(store: RedisStore) -> None:
    """Writes coalesced into one round trip still answer each caller on its own."""
    import asyncio

    for i in range(4):
        await store.register(WatchKey("fs", "users", f"c{i}"), NOW)
    claimed = await store.claim(NOW, 30, 10)
    stale = Claimed(claimed[0].watch, claimed[0].token + 1)  # a lease someone else holds
    assert await store.delete_watch(claimed[1].watch)
    verdicts = await asyncio.gather(
        store.reschedule(stale, replace(stale.watch, polls=9), NOW + 50),
        store.reschedule(claimed[1], claimed[1].watch, NOW + 50),
        store.reschedule(claimed[2], replace(claimed[2].watch, polls=3), NOW + 50),
        store.reschedule(claimed[3], claimed[3].watch, NOW + 60),
    )
    assert verdicts == ["stale", "gone", "ok", "ok"]
    saved = await store.get_watch(claimed[2].watch.id)
    assert saved is not None and saved.polls == 3 and saved.next_poll_at == NOW + 50
    untouched = await store.get_watch(stale.watch.id)
    assert untouched is not None and untouched.polls == 0
    # Due by now: the one rescheduled to +50, and the stale one whose lease ran out.
    again = {c.watch.id for c in await store.claim(NOW + 55, 30, 10)}
    assert again == {claimed[2].watch.id, stale.watch.id}


async def test_stale_lease_cannot_write(store: RedisStore) -> None:
    """A replica whose lease was reclaimed cannot record over the new holder."""
    await store.register(KEY, NOW)
    [old] = await store.claim(NOW, 30, 10)
    [new] = await store.claim(NOW + 31, 30, 10)
    assert await store.reschedule(old, replace(old.watch, polls=1), NOW + 40) == "stale"
    assert await store.reschedule(new, replace(new.watch, polls=1), NOW + 40) == "ok"


def _terminal(store_claim, outcome: Outcome = Outcome.COMPLETED):  # type: ignore[no-untyped-def]
    watch = replace(
        store_claim.watch,
        state=WatchState.TERMINAL,
        outcome=outcome,
        terminal_at=NOW + 1,
        status="COMPLETED",
    )
    event = outcome_event(
        watch=watch,
        provider="fullstory",
        outcome=outcome,
        previous_status="PROCESSING",
        detected_at=NOW + 1,
        snapshot=None,
    )
    return watch, event


async def test_finish_writes_state_and_outbox_once(store: RedisStore) -> None:
    """The terminal transition writes exactly one event, even when repeated or raced."""
    await store.register(KEY, NOW)
    [c] = await store.claim(NOW, 30, 10)
    watch, event = _terminal(c)
    assert await store.finish(c, watch, event, retention_s=3600) == "terminal"
    # A retried script call (same token) and a stale replica both change nothing.
    assert await store.finish(c, watch, event, retention_s=3600) == "finished"
    assert await store.events.outbox_length() == 1
    stored = await store.get_watch(c.watch.id)
    assert stored is not None and stored.state is WatchState.TERMINAL
    assert stored.outcome is Outcome.COMPLETED
    assert await store.claim(NOW + 3600, 30, 10) == []
    events, _ = await store.events.list_events(watch_id=c.watch.id)
    assert [e.id for e in events] == [event.id]
    assert (await store.events.read_outbox())[0]["event_id"] == event.id


async def test_terminal_data_expires_after_retention(store: RedisStore) -> None:
    """Terminal watches and their events carry a TTL of the retention."""
    await store.register(KEY, NOW)
    [c] = await store.claim(NOW, 30, 10)
    watch, event = _terminal(c)
    await store.finish(c, watch, event, retention_s=3600)
    ttl = await store.client.pttl(store.keys.watch(c.watch.id))
    ev_ttl = await store.client.pttl(store.keys.event(event.id))
    assert 0 < ttl <= 3_600_000 and 0 < ev_ttl <= 3_600_000


async def test_delete_stops_polling(store: RedisStore) -> None:
    """A deleted watch is never claimed and a poll in flight cannot resurrect it."""
    watch, _ = await store.register(KEY, NOW)
    [c] = await store.claim(NOW, 30, 10)
    assert await store.delete_watch(watch)
    assert await store.reschedule(c, c.watch, NOW + 1) == "gone"
    assert await store.claim(NOW + 100, 30, 10) == []
    assert await store.get_watch(watch.id) is None


async def test_list_watches_paginates_and_filters(store: RedisStore) -> None:
    """Listing walks every watch once across pages and filters by source and state."""
    ids = set()
    for i in range(7):
        w, _ = await store.register(WatchKey("fs" if i % 2 else "td", "users", f"j{i}"), NOW + i)
        ids.add(w.id)
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await store.list_watches(cursor=cursor, limit=3)
        seen += [w.id for w in page]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    fs_only, _ = await store.list_watches(source="fs", limit=50)
    assert len(fs_only) == 3 and all(w.source == "fs" for w in fs_only)
    terminal, _ = await store.list_watches(state=WatchState.TERMINAL)
    assert terminal == []


async def test_claim_asks_the_rate_limit(store: RedisStore) -> None:
    """Claims grant `burst` watches of a source at once; the rest wait in the source's
    backlog (still counted as watched), not in the due set where every claim would
    read them again."""
    for i in range(5):
        await store.register(WatchKey("fs", "users", f"r{i}"), NOW)
    await store.register(WatchKey("td", "users", "other"), NOW)
    limits = {"fs": (2.0, 2), "td": (0.0, 1)}
    claimed = await store.claim(NOW, 30, 10, limits)
    assert sorted(c.watch.source for c in claimed) == ["fs", "fs", "td"]
    assert await store.client.zcard(store.keys.due) == 0
    assert await store.backlogs() == {"fs": 3}
    counts = await store.watch_counts()
    assert counts["waiting_for_budget"] == 3 and counts["watching"] == 6
    assert await store.claim(NOW, 30, 10, limits) == []  # the next slot is 0.5 s away


async def test_a_backlog_is_served_best_priority_first(store: RedisStore) -> None:
    """Under contention the poll worth most goes first, whatever its due time; a new
    registration counts as worth the most (after an older poll of that worth); a served
    backlog is forgotten."""
    for name in ("a", "b", "c"):
        await store.register(WatchKey("fs", "users", name), NOW)
    first = await store.claim(NOW, 30, 10)
    worth = {"a": (10, 0), "b": (11, 300), "c": (12, 100)}  # due, head start from worth
    for c in first:
        due, head_start = worth[c.watch.job_id]
        await store.reschedule(c, c.watch, NOW + due, NOW + due - head_start)
    strict = {"fs": (0.001, 1)}
    [granted] = await store.claim(NOW + 20, 30, 10, strict)
    assert granted.watch.job_id == "a"  # before any refusal: due order
    await store.register(WatchKey("fs", "users", "new"), NOW + 20)
    assert await store.claim(NOW + 20, 30, 10, strict) == []
    assert await store.backlogs() == {"fs": 3}
    rest = await store.claim(NOW + 20, 30, 10, {"fs": (0.0, 1)})
    assert [c.watch.job_id for c in rest] == ["b", "new", "c"]
    assert await store.backlogs() == {}


async def test_pause_blocks_the_source(store: RedisStore) -> None:
    """A 429 pause holds back every watch of that source, even with the limiter off."""
    await store.register(WatchKey("td", "users", "a"), NOW)
    await store.register(WatchKey("fs", "users", "b"), NOW)
    await store.sources.pause("td", 5.0)
    assert 4.0 < await store.sources.pause_left("td") <= 5.0
    claimed = await store.claim(NOW, 30, 10, {"td": (0.0, 1), "fs": (0.0, 1)})
    assert [c.watch.source for c in claimed] == ["fs"]
    assert await store.backlogs() == {"td": 1}
    assert await store.claim(NOW + 1, 30, 10, {"td": (0.0, 1), "fs": (0.0, 1)}) == []


async def test_deleting_a_waiting_watch_leaves_no_trace(store: RedisStore) -> None:
    """A watch deleted while it waits in a backlog is gone from the backlog too."""
    watch, _ = await store.register(WatchKey("td", "users", "gone"), NOW)
    await store.sources.pause("td", 5.0)
    assert await store.claim(NOW, 30, 10, {"td": (0.0, 1)}) == []
    assert await store.backlogs() == {"td": 1}
    assert await store.delete_watch(watch)
    assert await store.backlogs() == {"td": 0}
    assert (await store.watch_counts())["watching"] == 0


async def test_token_is_shared_and_dropped_only_if_unchanged(store: RedisStore) -> None:
    """A token is dropped only by whoever still sees the same token."""
    await store.sources.set_token("td", "tok-a", 60)
    got = await store.sources.get_token("td")
    assert got is not None and got[0] == "tok-a" and 59 < got[1] <= 60
    await store.sources.set_token("td", "tok-b", 60)
    assert not await store.sources.drop_token("td", "tok-a")
    assert await store.sources.drop_token("td", "tok-b")
    assert await store.sources.get_token("td") is None


async def test_learned_durations_age_by_generations(store: RedisStore) -> None:
    """Durations are kept as two generations: when the newer fills, the older goes, so
    the histogram follows a change of the typical duration and stays bounded; a
    histogram nobody updates expires."""
    durations = DurationStore(store)
    for _ in range(GENERATION):
        await durations.record("fs", "users", 60)
    for _ in range(GENERATION):
        await durations.record("fs", "users", 600)
    await durations.record("fs", "users", 600)
    learned = await DurationStore(store).load("fs", "users")
    assert learned.total == GENERATION + 1
    assert learned.counts[bucket_of(60)] == 0  # the older generation is gone
    assert learned.quantile(0.5) == pytest.approx(600, rel=0.1)
    ttl = await store.client.pttl(store.keys.durations("fs", "users", "previous"))
    assert 29 * 86400_000 < ttl <= 30 * 86400_000
    assert len(await store.client.hgetall(store.keys.durations("fs", "users", "current"))) == 2


async def test_an_expired_lease_is_revoked(store: RedisStore) -> None:
    """A holder whose lease ran out cannot write any more (its token is stale), so a
    watch is never both due and waiting in a backlog, nor leased twice."""
    await store.register(WatchKey("fs", "users", "slow"), NOW)
    [old] = await store.claim(NOW, 30, 10, {"fs": (0.001, 1)})
    refused = await store.claim(NOW + 31, 30, 10, {"fs": (0.001, 1)})
    assert refused == [] and await store.backlogs() == {"fs": 1}
    assert await store.reschedule(old, old.watch, NOW + 40) == "stale"
    claimed = await store.claim(NOW + 50, 30, 10, {"fs": (0.0, 1)})
    assert [c.watch.job_id for c in claimed] == ["slow"]
    assert (await store.watch_counts())["watching"] == 1


async def test_backlogs_do_not_hold_other_sources_back(store: RedisStore) -> None:
    """When the workers, not the budget, are short, a source's backlog and other
    sources' due watches take turns: a due watch of another source is not starved."""
    for i in range(20):
        await store.register(WatchKey("fs", "users", f"b{i}"), NOW)
    await store.sources.pause("fs", 1.0)
    limits = {"fs": (0.0, 1), "td": (0.0, 1)}
    assert await store.claim(NOW, 30, 10, limits) == []
    assert await store.backlogs() == {"fs": 20}
    await store.client.delete(store.keys.source_pause("fs"))
    await store.register(WatchKey("td", "users", "other"), NOW + 1)
    claimed = await store.claim(NOW + 1, 30, 2, limits)
    assert "td" in [c.watch.source for c in claimed]


async def test_a_new_registration_has_a_bounded_head_start(store: RedisStore) -> None:
    """New watches go first by the store's head start (max_interval in the daemon), so
    no poll is passed over by registrations made more than that after it fell due."""
    assert store.head_start_s == NEW_WATCH_HEAD_START_S
    short = RedisStore(store.client, store.keys.prefix + "-short", head_start_s=30)
    watch, _ = await short.register(WatchKey("fs", "users", "n"), NOW)
    prio = await short.client.hget(short.keys.watch(watch.id), "prio")
    assert int(prio) == round((NOW - 30) * 1000)


async def test_a_poll_not_made_keeps_its_place(store: RedisStore) -> None:
    """A watch handed back without a poll (shutdown, no slot after all) keeps its
    priority; one that was polled gets the new one."""
    watch, _ = await store.register(WatchKey("fs", "users", "k"), NOW)
    key = store.keys.watch(watch.id)
    before = await store.client.hget(key, "prio")
    [c] = await store.claim(NOW, 30, 10)
    assert await store.reschedule(c, c.watch, NOW + 5, keep_priority=True) == "ok"
    assert await store.client.hget(key, "prio") == before
    [c] = await store.claim(NOW + 5, 30, 10)
    assert await store.reschedule(c, c.watch, NOW + 10) == "ok"
    assert int(await store.client.hget(key, "prio")) == round((NOW + 10) * 1000)


async def test_a_claim_keeps_each_sources_own_workers(store: RedisStore) -> None:
    """Two busy sources share the room all share and their own; a third source's own
    workers are not taken though it has nothing due; a capped source stops at its cap;
    what is not taken waits in its source's backlog and comes at the next claim."""
    from bridge.store.redis import WorkerRoom

    for source in ("a", "b"):
        for i in range(6):
            await store.register(WatchKey(source, "users", f"{source}{i}"), NOW)
    limits = {s: (0.0, 1) for s in ("a", "b", "c")}
    room = WorkerRoom(own={"a": 1, "b": 1, "c": 2}, shared=2)
    first = [c.watch.source for c in await store.claim(NOW, 30, 20, limits, room=room)]
    assert len(first) == 4 and first.count("a") >= 1 and first.count("b") >= 1  # c keeps 2
    left = {s: 6 - first.count(s) for s in ("a", "b")}
    capped = WorkerRoom(own={"a": 1, "b": 1, "c": 2}, shared=9, most={"a": 1, "b": 9, "c": 9})
    second = [c.watch.source for c in await store.claim(NOW, 30, 20, limits, room=capped)]
    assert second.count("a") == 1 and second.count("b") == left["b"]
    rest = [c.watch.source for c in await store.claim(NOW, 30, 20, limits)]
    assert rest == ["a"] * (left["a"] - 1)


async def test_many_registrations_answer_as_one_at_a_time(store: RedisStore) -> None:
    """New jobs, a job already watched, the same job twice in one batch, and a job
    whose watch is gone: each answer is what `register` gives."""
    before, _ = await store.register(WatchKey("fs", "users", "old"), NOW)
    gone, _ = await store.register(WatchKey("fs", "users", "gone"), NOW)
    await store.client.delete(store.keys.watch(gone.id))  # evicted, say
    keys = [WatchKey("fs", "users", j) for j in ("a", "old", "b", "a", "gone")]
    answers = await store.register_many(keys, NOW)
    assert [new for _, new in answers] == [True, False, True, False, True]
    assert answers[1][0] == before
    assert answers[3][0].id == answers[0][0].id
    assert answers[4][0].id == gone.id  # watched again under its job's id
    for key, (watch, _) in zip(keys, answers, strict=True):
        assert (watch.source, watch.kind, watch.job_id) == (key.source, key.kind, key.job_id)
        assert await store.get_watch(watch.id) is not None
    assert await store.register_many([], NOW) == []


async def test_one_backlog_among_many_sources_gives_a_whole_claim(store: RedisStore) -> None:
    """100 sources configured, only one with a backlog: its heads are read as if it
    were alone, and one claim takes 16 of them (not one, then a halt per round)."""
    for i in range(40):
        await store.register(WatchKey("s0", "users", f"j{i}"), NOW)
    sources = [f"s{i}" for i in range(100)]
    await store.sources.pause("s0", 5.0)
    assert await store.claim(NOW, 30, 16, dict.fromkeys(sources, (0.0, 1))) == []
    assert (await store.backlogs())["s0"] == 40
    await store.client.delete(store.keys.source_pause("s0"))
    await store.client.zadd(store.keys.ready, {"s0": 0})  # as when the pause ends
    fast = dict.fromkeys(sources, (10_000.0, 1_000))
    assert len(await store.claim(NOW, 30, 16, fast, 0.1)) == 16


async def test_a_deleted_job_watched_again_keeps_its_id_not_its_holders(store: RedisStore) -> None:
    """A job's watch id derives from the job: deleted and registered again by hand, it
    is the same id, yet a poll leased before the delete can no longer write to it;
    discovery leaves a deleted job be."""
    watch, _ = await store.register(KEY, NOW)
    [before] = await store.claim(NOW, 30, 10)
    assert await store.delete_watch(watch)
    assert not await store.delete_watch(watch)  # nothing left to delete
    assert not await store.register_discovered(KEY, NOW + 1)
    assert await store.get_watch(watch.id) is None
    again, created = await store.register(KEY, NOW + 2)
    assert created and again.id == watch.id and again.polls == 0
    assert await store.reschedule(before, before.watch, NOW + 3) == "stale"
    [after] = await store.claim(NOW + 10, 30, 10)
    assert after.token > before.token
    assert await store.reschedule(after, after.watch, NOW + 20) == "ok"


async def _legacy_watch(store: RedisStore, key: WatchKey, watch_id: str) -> Watch:
    """A watch as 0.2 wrote it: a random id, the whole watch in `doc`, a lookup key."""
    watch = Watch(id=watch_id, source=key.source, kind=key.kind, job_id=key.job_id,
                  state=WatchState.WATCHING, created_at=NOW - 60, next_poll_at=NOW - 1,
                  polls=2, poll_reason="eta")  # fmt: skip
    doc = orjson.dumps({**orjson.loads(codec.watch_to_doc(watch)), "id": watch_id}).decode()
    k = store.keys
    await store.client.set(k.watch_key(key.source, key.kind, key.job_id), watch_id)
    await store.client.hset(
        k.watch(watch_id),
        mapping={
            "state": "watching",
            "source": key.source,
            "lease": 4,
            "doc": doc,
            "prio": to_ms(NOW - 1),
        },
    )
    await store.client.zadd(k.due, {watch_id: to_ms(NOW - 1)})
    await store.client.zadd(k.watches, {watch_id: to_ms(NOW - 60)})
    return replace(watch, lease=4)


async def test_watches_of_older_versions_are_read_written_and_deleted(store: RedisStore) -> None:
    """A deployment upgraded in place: a watch 0.2 registered is found by its job, claimed,
    rescheduled in its own format (0.2 can still read it), finished and deleted; a
    deleted one's job is left to discovery as before."""
    old = await _legacy_watch(store, KEY, "w_" + "1a" * 10)
    assert (await store.get_watch(old.id)) == old
    found, created = await store.register(KEY, NOW)
    assert not created and found == old
    [many] = await store.register_many([KEY], NOW)
    assert many == (old, False)
    [c] = await store.claim(NOW, 30, 10)
    assert c.watch == replace(old, lease=5) and c.token == 5
    assert await store.reschedule(c, replace(c.watch, polls=3), NOW + 5) == "ok"
    doc = orjson.loads(await store.client.hget(store.keys.watch(old.id), "doc"))
    assert doc["job_id"] == KEY.job_id and doc["polls"] == 3  # whole, as 0.2 reads it
    assert await store.delete_watch(old)
    assert not await store.register_discovered(KEY, NOW + 6)
    second = WatchKey("fs", "users", "job-2")
    old2 = await _legacy_watch(store, second, "w_" + "2b" * 10)
    [c2] = await store.claim(NOW, 30, 10)
    assert c2.watch.id == old2.id
    done, event = _terminal(c2)
    assert await store.finish(c2, done, event, 3600) == "terminal"
    finished = await store.get_watch(old2.id)
    assert finished is not None and finished.state is WatchState.TERMINAL
    again, created = await store.register(second, NOW + 2)
    assert not created and again.id == old2.id


async def test_a_legacy_key_naming_a_vanished_watch_registers_afresh(store: RedisStore) -> None:
    """A 0.2 lookup key whose watch was evicted is dropped, not followed."""
    key = WatchKey("fs", "users", "orphan")
    await store.client.set(store.keys.watch_key(key.source, key.kind, key.job_id), "w_gone")
    watch, created = await store.register(key, NOW)
    assert created and watch.id == codec.watch_id(key.source, key.kind, key.job_id)
    assert await store.client.get(store.keys.watch_key(key.source, key.kind, key.job_id)) is None
    [(again, created_again)] = await store.register_many([key], NOW)
    assert not created_again and again.id == watch.id


@pytest.fixture
def many_sources(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[float, int]]:
    """Limits for 1,000 sources, past the count up to which a claim names them all
    (lowered to 2 here, so that a few sources with watches take the many-sources path)."""
    monkeypatch.setattr(redis_store, "FEW_SOURCES", 2)
    return {f"s{i}": (1.0, 1) for i in range(1000)}


def _named_per_claim(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The sources each claim names (whose limiter keys it passes), claim by claim."""
    named: list[set[str]] = []
    build = store._limiter_keys
    read = store._read

    async def reading(*args: Any) -> list[Any]:
        named.append(set())
        return await read(*args)

    def counted(source: str) -> list[str]:
        if named:
            named[-1].add(source)
        return build(source)

    monkeypatch.setattr(store, "_limiter_keys", counted)
    monkeypatch.setattr(store, "_read", reading)
    return named


async def test_a_claim_among_many_sources_names_only_those_it_may_serve(
    store: RedisStore, many_sources: dict[str, tuple[float, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 1,000 sources configured, a claim names the sources of its due watches and
    the ready ones, not all; each source with watches gets its slot, the rest wait in
    its backlog, scored in ready by when its limiter may grant again."""
    for source in ("s1", "s2", "s3"):
        for i in range(4):
            await store.register(WatchKey(source, "users", f"{source}-{i}"), NOW - 10)
    named = _named_per_claim(store, monkeypatch)
    first = await store.claim(NOW, 30, 12, many_sources, horizon_s=0.2)
    assert sorted(c.watch.source for c in first) == ["s1", "s2", "s3"]  # a slot each
    assert named and all(n <= {"s1", "s2", "s3"} for n in named)
    assert await store.backlogs() == {"s1": 3, "s2": 3, "s3": 3}
    for source in ("s1", "s2", "s3"):  # a slot a second: ready again in about a second
        score = await store.client.zscore(store.keys.ready, source)
        assert score is not None and to_ms(NOW) + 500 < score <= to_ms(NOW) + 1100
    named.clear()
    assert await store.claim(NOW, 30, 12, many_sources, horizon_s=0.2) == []
    assert all(not n for n in named)  # nobody ready, nothing due: no source named
    for source in ("s1", "s2", "s3"):  # as when their time comes
        await store.client.delete(store.keys.source_gcra(source))
    await store.client.zadd(store.keys.ready, {"s2": 0})
    [again] = await store.claim(NOW, 30, 12, many_sources, horizon_s=0.2)
    assert again.watch.source == "s2"  # the ready one, from its backlog


async def test_many_sources_due_watches_another_replica_registered_are_served(
    store: RedisStore, many_sources: dict[str, tuple[float, int]]
) -> None:
    """A claim learns the source of a due watch it has not seen (registered by another
    replica) from Redis, and applies that source's limit; a source without a limit is
    served in full."""
    other = RedisStore(store.client, store.keys.prefix)
    for i in range(3):
        await other.register(WatchKey("s7", "users", f"limited-{i}"), NOW - 5)
        await other.register(WatchKey("free", "users", f"free-{i}"), NOW - 5)
    claimed = await store.claim(NOW, 30, 10, many_sources, horizon_s=0.2)
    assert sorted(c.watch.source for c in claimed) == ["free", "free", "free", "s7"]
    assert await store.backlogs() == {"s7": 2}


async def test_a_backlog_an_older_version_left_gets_a_place_in_ready(
    store: RedisStore, many_sources: dict[str, tuple[float, int]]
) -> None:
    """Versions before 0.3 kept the sources with a backlog in a set only: a claim gives
    each a place in ready, and their backlogs are served."""
    for i in range(2):
        await store.register(WatchKey("s5", "users", f"old-{i}"), NOW - 5)
    await store.sources.pause("s5", 0.2)
    assert await store.claim(NOW, 30, 10, many_sources) == []
    await store.client.delete(store.keys.ready, store.keys.source_pause("s5"))
    assert await store.backlogs() == {"s5": 2}
    store._ahead = None
    [claimed] = await store.claim(NOW, 30, 10, many_sources, horizon_s=0.2)
    assert claimed.watch.source == "s5"
    assert await store.client.zscore(store.keys.ready, "s5") is not None


async def test_ready_sources_among_many_take_turns(
    store: RedisStore, many_sources: dict[str, tuple[float, int]]
) -> None:
    """Sources with budget and a backlog are served in turn, one watch each, however
    many there are beyond what one claim reads: none waits behind the same few."""
    plenty = {s: (1000.0, 100) for s in many_sources}
    sources = [f"s{i}" for i in range(10)]
    for source in sources:
        for i in range(3):
            await store.register(WatchKey(source, "users", f"{source}-{i}"), NOW - 10)
        await store.sources.pause(source, 60)  # ended below, by hand: no race with time
    assert await store.claim(NOW, 30, 50, plenty) == []  # all wait in their backlogs
    for t, source in enumerate(sources):
        await store.client.delete(store.keys.source_pause(source))
        await store.client.zadd(store.keys.ready, {source: t})  # as when the pauses end
    served: list[str] = []
    for _ in range(5):
        served += [c.watch.source for c in await store.claim(NOW, 30, 2, plenty)]
    assert sorted(served) == sources  # ten claimed, one from each source


async def test_a_job_watched_again_after_its_record_expired_fences_old_holders(
    store: RedisStore,
) -> None:
    """The same job has the same watch id; once its record is gone (its retention
    passed, or a failover lost it) and the job is watched again, a holder from before
    still cannot write: lease tokens start from the server clock, not from 0."""
    watch, _ = await store.register(KEY, NOW)
    [before] = await store.claim(NOW, 30, 10)
    await store.client.delete(store.keys.watch(watch.id))  # expired, or lost
    again, created = await store.register(KEY, NOW + 1)
    assert created and again.id == watch.id
    [after] = await store.claim(NOW + 1, 30, 10)
    assert after.token != before.token
    assert await store.reschedule(before, before.watch, NOW + 2) == "stale"
    assert await store.reschedule(after, after.watch, NOW + 2) == "ok"
    assert (await store.get_watch(watch.id)) is not None


async def test_ready_sources_without_a_backlog_hold_nobody_back(
    store: RedisStore, many_sources: dict[str, tuple[float, int]]
) -> None:
    """Sources left in ready after their backlogs were rolled back (or emptied by
    another writer) are dropped by the claims that meet them; a real backlog behind
    them is served, and the rollback script clears ready as well."""
    for i in range(20):
        await store.client.zadd(store.keys.ready, {f"s{i}": 0})  # no backlog behind any
    for i in range(3):
        await store.register(WatchKey("s50", "users", f"late-{i}"), NOW - 5)
    await store.sources.pause("s50", 0.2)
    assert await store.claim(NOW, 30, 4, many_sources) == []
    await store.client.delete(store.keys.source_pause("s50"))
    await store.client.zadd(store.keys.ready, {"s50": 1})  # as when the pause ends
    served: list[str] = []
    for _ in range(6):
        served += [c.watch.source for c in await store.claim(NOW, 30, 4, many_sources, 0.2)]
    assert served == ["s50"]  # its one slot a second
    assert await store.client.zrange(store.keys.ready, 0, -1) == ["s50"]
    script = (Path(__file__).parents[2] / "deploy" / "rollback-backlogs.lua").read_text()
    await store.client.eval(script, 1, store.keys.backlogs, store.keys.prefix)
    assert await store.client.exists(store.keys.ready) == 0


async def test_a_backlog_scored_under_an_older_limit_is_ready_when_a_watch_joins_it(
    store: RedisStore, many_sources: dict[str, tuple[float, int]]
) -> None:
    """A source refused under a slow limit waits in ready until then; its limit lifted
    (a restart with another config), the next due watch that joins its backlog makes it
    ready at once, and its backlog is served."""
    slow = {**many_sources, "s1": (0.01, 1)}
    for i in range(3):
        await store.register(WatchKey("s1", "users", f"slow-{i}"), NOW - 5)
    [first] = await store.claim(NOW, 30, 10, slow, 0.2)
    score = await store.client.zscore(store.keys.ready, "s1")
    assert score is not None and score > to_ms(NOW) + 90_000  # a slot per 100 s
    lifted = {**many_sources, "s1": (0.0, 1)}
    assert await store.claim(NOW + 1, 30, 10, lifted, 0.2) == []  # still waits its turn
    await store.register(WatchKey("s1", "users", "new"), NOW)
    assert await store.claim(NOW + 1, 30, 10, lifted, 0.2) == []  # it joins the backlog
    claimed = await store.claim(NOW + 1, 30, 10, lifted, 0.2)  # the next tick
    jobs = sorted(c.watch.job_id for c in (first, *claimed))
    assert jobs == ["new", "slow-0", "slow-1", "slow-2"]


async def test_dead_deliveries_are_counted_until_retried_or_expired(store: RedisStore) -> None:
    """The dead-letter count (status, console): a delivery recorded dead is counted, a
    retried one no longer, and the janitor forgets entries past the retention."""
    from bridge.model import Attempt, Delivery, DeliveryStatus
    from bridge.store.deliveries import DeliveryStore

    deliveries = DeliveryStore(store)
    now = time.time()  # the script stamps a death with the server's clock
    made = [
        Delivery(id=f"dlv_{i}", event_id=f"evt_{i}", subscription_id="sub_1",
                 status=DeliveryStatus.PENDING, created_at=now, detected_at=now)
        for i in range(2)
    ]  # fmt: skip
    await deliveries.add_deliveries(made, now)
    claimed, _ = await deliveries.claim_versioned(now, 30, 2)
    for c in claimed:
        assert await deliveries.record(c, c.delivery.dead(Attempt(now, 500, 0.1)), 600) == "ok"
    assert (await deliveries.queue_counts([]))["deliveries_dead"] == 2
    assert await deliveries.requeue(made[0], now) == "ok"
    assert (await deliveries.queue_counts([]))["deliveries_dead"] == 1
    await deliveries.trim_index(now + 1200, 600)  # past the retention of the other
    assert (await deliveries.queue_counts([]))["deliveries_dead"] == 0
    # a job's progress channel that died carries its next progress event: not dead now
    channel = replace(made[1], id="dlv_channel", event_id="evt_p1")
    await deliveries.fan_out_many([("", [channel])], now, {channel.id: "progress"})
    taken, _ = await deliveries.claim_versioned(now, 30, 5)  # with the one retried above
    (c,) = [t for t in taken if t.delivery.id == channel.id]
    await deliveries.record(c, c.delivery.dead(Attempt(now, 500, 0.1)), 600)
    assert (await deliveries.queue_counts([]))["deliveries_dead"] == 1
    newer = replace(channel, event_id="evt_p2")
    await deliveries.fan_out_many([("", [newer])], now + 1, {channel.id: "progress"})
    assert (await deliveries.get_delivery(channel.id)).status is DeliveryStatus.PENDING  # type: ignore[union-attr]
    assert (await deliveries.queue_counts([]))["deliveries_dead"] == 0
