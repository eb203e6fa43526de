"""Watches spread over partitions (store/layout.py, store/partitioned.py): on fakeredis,
a real redis-server (every script audited for undeclared keys) and a real 3-primary
cluster, where a script touching two slots fails."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.events import outcome_event
from bridge.model import Outcome, WatchKey, WatchState
from bridge.store import codec
from bridge.store.keys import Keys
from bridge.store.layout import SLOTS, Layout, partition_of, partition_tags, slot_of
from bridge.store.partitioned import PartitionedStore
from bridge.store.verdicts import Verdict

NOW = 1_800_000_000.0
PARTS = 6  # as the `parts` fixture (tests/conftest.py)


# ------------------------------------------------------------------ the layout
@pytest.mark.parametrize("primaries", [2, 3, 4, 6])
def test_partitions_spread_evenly_over_a_usual_clusters_primaries(primaries: int) -> None:
    """A cluster created the usual way gives each primary an equal range of slots: 12
    partitions fall 12 / primaries on each."""
    width = SLOTS / primaries
    held = Counter(int(slot_of(tag) // width) for tag in partition_tags("bridge", 12))
    assert sorted(held.values()) == [12 // primaries] * primaries


def test_tags_are_distinct_and_never_the_fleets() -> None:
    tags = partition_tags("bridge", 60)
    assert len(set(tags)) == 60 and "bridge" not in tags
    assert all(t.startswith("bridge/") for t in tags)
    with pytest.raises(ValueError, match="between 2 and"):
        partition_tags("bridge", 1)


@given(st.text(alphabet="0123456789abcdef", min_size=20, max_size=20), st.integers(2, 64))
def test_a_watch_id_names_one_partition(hex_id: str, n: int) -> None:
    assert 0 <= partition_of("w_" + hex_id, n) < n
    assert partition_of("w_" + hex_id, n) == Layout("p", n).of("w_" + hex_id)
    assert partition_of("w_" + hex_id, 1) == 0


def test_per_job_keys_take_the_partitions_tag_fleet_keys_the_prefixs() -> None:
    one, part = Keys("bridge"), Keys("bridge").partition("bridge/j")
    assert one.watch("w_1") == "{bridge}:watch:w_1"  # one tag: today's names
    assert part.watch("w_1") == "{bridge/j}:watch:w_1"
    assert part.due == "{bridge/j}:due" and part.outbox == "{bridge/j}:outbox"
    assert part.source_backlog("fs") == "{bridge/j}:source:fs:backlog"
    assert part.source_gcra("fs") == one.source_gcra("fs") == "{bridge}:source:fs:gcra"
    assert part.subscriptions == one.subscriptions


# ------------------------------------------------------------- the partitioned store
def _keys(n: int) -> list[WatchKey]:
    return [WatchKey("fs", "users", f"job-{i}") for i in range(n)]


async def test_watches_land_in_the_partition_their_id_names(parts: PartitionedStore) -> None:
    """Registrations (one at a time and by batch) spread over every partition, each watch
    found, listed once and counted across them."""
    singles = [await parts.register(k, NOW) for k in _keys(20)]
    batch = await parts.register_many([WatchKey("td", "users", f"b{i}") for i in range(40)], NOW)
    watches = [w for w, _ in singles + batch]
    assert all(created for _, created in singles + batch)
    again = await parts.register_many(_keys(3), NOW + 1)
    assert [created for _, created in again] == [False] * 3
    assert [w.id for w, _ in again] == [w.id for w, _ in singles[:3]]
    used = Counter(parts.layout.of(w.id) for w in watches)
    assert len(used) == PARTS
    for w in watches:
        shard = parts.shards[parts.layout.of(w.id)]
        assert await parts.client.exists(shard.keys.watch(w.id)) == 1
        assert (await parts.get_watch(w.id)) == w
    assert (await parts.find_watch(WatchKey("td", "users", "b7"))) is not None
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await parts.list_watches(cursor=cursor, limit=7)
        seen += [w.id for w in page]
        if cursor is None:
            break
    assert sorted(seen) == sorted(w.id for w in watches)
    fs, _ = await parts.list_watches(source="fs", limit=100)
    assert len(fs) == 20
    assert (await parts.watch_counts())["total"] == 60


async def test_every_partition_is_claimed_and_each_watch_once(parts: PartitionedStore) -> None:
    """Claims of a few at a time start one partition further each time: every watch is
    leased once, from every partition, and a finished one writes its event in its own."""
    watches = [w for w, _ in await parts.register_many(_keys(30), NOW)]
    leased: list[str] = []
    for _ in range(20):
        leased += [c.watch.id for c in await parts.claim(NOW, 30, 4)]
    assert sorted(leased) == sorted(w.id for w in watches)
    assert await parts.claim(NOW, 30, 4) == []
    assert (await parts.watch_counts())["polling_now"] == 30


async def test_finish_and_reschedule_go_to_the_watchs_partition(parts: PartitionedStore) -> None:
    await parts.register_many(_keys(6), NOW)
    claimed = await parts.claim(NOW, 30, 10)
    assert len(claimed) == 6
    first, *rest = claimed
    updated = first.watch.ended(Outcome.COMPLETED, NOW + 1)
    event = outcome_event(
        watch=updated,
        provider="fullstory",
        outcome=Outcome.COMPLETED,
        previous_status="PROCESSING",
        detected_at=NOW + 1,
        snapshot=None,
    )
    assert await parts.finish(first, updated, event, 3600) is Verdict.TERMINAL
    assert await parts.finish(first, updated, event, 3600) is Verdict.FINISHED
    shard = parts.shard(first.watch.id)
    assert (await shard.events.get_event(event.id)) is not None
    for c in rest:
        assert await parts.reschedule(c, c.watch, NOW + 5) is Verdict.OK
    assert (await parts.get_watch(first.watch.id)).state is WatchState.TERMINAL  # type: ignore[union-attr]
    again = await parts.claim(NOW + 6, 30, 10)
    assert sorted(c.watch.id for c in again) == sorted(c.watch.id for c in rest)
    assert await parts.delete_watch(rest[0].watch)
    assert await parts.get_watch(rest[0].watch.id) is None


async def test_a_sources_limit_holds_across_partitions(parts: PartitionedStore) -> None:
    """A source's limiter is the fleet's: watches in every partition share its rate, the
    rest wait in their partitions' backlogs, and slots a claim did not use go back."""
    await parts.register_many(_keys(24), NOW)
    limits = {"fs": (2.0, 2)}
    claimed = []
    for _ in range(PARTS):
        claimed += await parts.claim(NOW, 30, 10, limits)
    assert len(claimed) == 2  # burst 2; the next slot is 0.5 s away, past the horizon
    assert (await parts.backlogs()) == {"fs": 22}
    counts = await parts.watch_counts()
    assert counts["waiting_for_budget"] == 22 and counts["watching"] == 24
    # a horizon of 2 s: slots 0.5 s apart, granted across partitions, never more
    ahead = []
    for _ in range(PARTS):
        ahead += await parts.claim(NOW, 30, 10, limits, horizon_s=2.0)
    assert 3 <= len(ahead) <= 5
    delays = sorted(c.delay_s for c in ahead)
    assert all(b - a >= 0.45 for a, b in pairwise(delays))


async def test_slots_a_claim_could_not_use_are_given_back(parts: PartitionedStore) -> None:
    """A grant asked for a partition's candidates; another replica took them meanwhile:
    the slots go back and the next claim gets them."""
    await parts.register_many(_keys(2), NOW)
    limits = {"fs": (1.0, 2)}
    shard = parts.shards[0]
    grants = await parts.shards[0]._limiter.grant({"fs": 2}, limits, 0)  # type: ignore[union-attr]
    assert len(grants["fs"].delays) == 2
    await shard._limiter.give_back(grants, {"fs": 0}, limits)  # type: ignore[union-attr]
    claimed = []
    for _ in range(PARTS):
        claimed += await parts.claim(NOW, 30, 10, limits)
    assert len(claimed) == 2


async def test_a_pause_holds_every_partition(parts: PartitionedStore) -> None:
    await parts.register_many(_keys(12), NOW)
    await parts.sources.pause("fs", 5.0)
    for _ in range(PARTS):
        assert await parts.claim(NOW, 30, 10, {"fs": (0.0, 1)}) == []
    assert (await parts.backlogs()) == {"fs": 12}


async def test_markers_say_which_partition_lost_its_data(parts: PartitionedStore) -> None:
    """A fresh deployment reads back the marker it wrote (no loss reported at start);
    a partition that lost its data makes the marker unreadable until marked again."""
    assert await parts.claim_marker("m1")
    assert await parts.get_marker() == "m1"
    assert not await parts.claim_marker("m2")  # another replica starting: it agrees
    assert await parts.get_marker() == "m1"
    await parts.client.delete(parts.shards[3].keys.marker)  # that partition's primary lost it
    assert await parts.get_marker() is None
    assert await parts.claim_marker("m2")
    assert await parts.get_marker() == "m1"
    await parts.client.delete(parts.keys.marker)  # the fleet's own
    assert await parts.get_marker() is None
    assert await parts.claim_marker("m3")
    assert await parts.get_marker() == "m3"


def _in_partitions(parts: PartitionedStore, wanted: set[int], n: int) -> list[WatchKey]:
    keys: list[WatchKey] = []
    i = 0
    while len(keys) < n:
        key = WatchKey("fs", "users", f"p-{i}")
        if parts.layout.of(codec.watch_id(key.source, key.kind, key.job_id)) in wanted:
            keys.append(key)
        i += 1
    return keys


async def test_busy_partitions_take_turns_past_idle_ones(parts: PartitionedStore) -> None:
    """Only partitions 0 and 1 hold work, claims of one watch at a time: each is served
    about as often as the other, not the first one past the idle ones every time."""
    await parts.register_many(_in_partitions(parts, {0, 1}, 24), NOW)
    served = Counter()
    for _ in range(12):
        [claimed] = await parts.claim(NOW, 30, 1)
        served[parts.layout.of(claimed.watch.id)] += 1
    assert served[0] == served[1] == 6


async def test_a_claim_asks_no_more_slots_than_its_workers_can_take(
    parts: PartitionedStore,
) -> None:
    """A source whose workers can take one more watch is granted one slot, not one per
    candidate: slots asked for and not used are spent when another replica reserved
    after them."""
    from bridge.store.redis import WorkerRoom

    await parts.register_many(_keys(24), NOW)
    limiter = parts.shards[0]._limiter
    asked: list[int] = []
    grant = limiter.grant  # type: ignore[union-attr]

    async def recording(wanted: Any, *args: Any) -> Any:
        asked.extend(wanted.values())
        return await grant(wanted, *args)

    limiter.grant = recording  # type: ignore[union-attr,method-assign]
    room = WorkerRoom(own={"fs": 1}, shared=0, most={"fs": 1})
    claimed = await parts.claim(NOW, 30, 10, {"fs": (10.0, 10)}, room=room)
    assert len(claimed) == 1 and asked and max(asked) == 1


async def test_an_id_that_is_no_watchs_finds_none(parts: PartitionedStore) -> None:
    for bad in ("nope", "w_", "w_zzzzzzzz", ""):
        assert await parts.get_watch(bad) is None
