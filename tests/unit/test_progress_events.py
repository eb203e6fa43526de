"""import.progress: when a move is worth an event (pure), and how its deliveries keep
order and supersede each other (the delivery scripts, on fakeredis and real Redis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.event_types import type_matches
from bridge.model import Delivery, DeliveryStatus, Event
from bridge.poll.progress import progress_due
from bridge.store.deliveries import DeliveryStore, delivery_id, fanout_mode, progress_channel
from bridge.store.redis import RedisStore

NOW = 1_764_000_000.0


def due(**kw: Any) -> int | None:
    args: dict[str, Any] = {
        "previous_status": "IN_PROGRESS",
        "status": "IN_PROGRESS",
        "done": None,
        "total": None,
        "last_step": -1,
        "last_at": None,
        "now": NOW,
        "step": 0.1,
        "min_interval_s": 30.0,
    }
    return progress_due(**{**args, **kw})


def test_what_is_worth_an_event() -> None:
    """A status change always; a count when it crosses into a new 10 % step, not more
    often than the minimum interval; nothing for a count within the same step."""
    assert due(previous_status="QUEUED") == -1
    assert due(done=5, total=100) is None  # within the first step: nothing to tell yet
    assert due(done=15, total=100) == 1
    assert due(done=15, total=100, last_step=1) is None
    assert due(done=25, total=100, last_step=1, last_at=NOW - 10) is None  # too soon
    assert due(done=25, total=100, last_step=1, last_at=NOW - 31) == 2
    assert due(previous_status=None, status="QUEUED") is None  # the first sight is no change


@given(
    st.lists(st.integers(0, 1000), min_size=1, max_size=30),
    st.integers(1, 1000),
    st.floats(0.01, 1),
)
def test_steps_only_go_forward(dones: list[int], total: int, step: float) -> None:
    """However the counts move, each announced step is higher than the one before."""
    last, at, now = -1, None, NOW
    for done in dones:
        now += 60
        got = due(done=done, total=total, last_step=last, last_at=at, now=now, step=step)
        if got is not None:
            assert got > last
            last, at = got, now


def test_progress_is_opt_in() -> None:
    """import.progress goes only to subscriptions that name it, not to import.* or *."""
    assert type_matches("import.progress", "import.progress")
    assert not type_matches("import.*", "import.progress")
    assert not type_matches("*", "import.progress")


def progress(watch: str, n: int) -> Event:
    return Event(id=f"evt_progress_{watch}_{n}", type="import.progress",
                 timestamp="t", watch_id=watch, data={"source": "td"})  # fmt: skip


def terminal(watch: str) -> Event:
    return Event(id=f"evt_done_{watch}", type="import.completed",
                 timestamp="t", watch_id=watch, data={"source": "td"})  # fmt: skip


def delivery_of(event: Event, sub: str) -> Delivery:
    did = (
        progress_channel(event.watch_id, sub)
        if event.type == "import.progress"
        else delivery_id(event.id, sub)
    )
    return Delivery(id=did, event_id=event.id, subscription_id=sub,
                    status=DeliveryStatus.PENDING, created_at=NOW, detected_at=NOW)  # fmt: skip


async def fan(store: DeliveryStore, event: Event, now: float = NOW) -> None:
    d = delivery_of(event, "sub_1")
    await store.save_event(event, now, 3600)
    await store.fan_out_many([("", [d])], now, {d.id: fanout_mode(event, "sub_1")})


@pytest.fixture
def deliveries(store: RedisStore) -> DeliveryStore:
    return DeliveryStore(store)


async def test_a_newer_progress_replaces_one_not_sent(deliveries: DeliveryStore) -> None:
    """Two progress events before anything was sent: one delivery, carrying the newer."""
    await fan(deliveries, progress("w1", 1))
    await fan(deliveries, progress("w1", 2))
    claimed = await deliveries.claim(NOW + 1, 30, 10)
    assert [c.delivery.event_id for c in claimed] == ["evt_progress_w1_2"]


async def test_one_in_flight_then_the_newest(deliveries: DeliveryStore) -> None:
    """While one progress event is in flight, newer ones wait (only the newest kept) and
    go once it is recorded: never two at once for a job and subscriber."""
    await fan(deliveries, progress("w2", 1))
    [first] = await deliveries.claim(NOW + 1, 30, 10)
    await fan(deliveries, progress("w2", 2))
    await fan(deliveries, progress("w2", 3))
    assert await deliveries.claim(NOW + 2, 30, 10) == []  # nothing while one is in flight
    from dataclasses import replace

    done = replace(first.delivery, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None)
    assert await deliveries.record(first, done, 3600) == "ok"
    [second] = await deliveries.claim(NOW + 3, 30, 10)
    assert second.delivery.event_id == "evt_progress_w2_3"


async def test_the_terminal_event_waits_for_the_progress_before_it(
    deliveries: DeliveryStore,
) -> None:
    """A job's terminal event is not sent while its progress channel still has an event
    to send or in flight: the subscriber sees progress, then the end."""
    from dataclasses import replace

    await fan(deliveries, progress("w3", 1))
    await fan(deliveries, terminal("w3"))
    [only] = await deliveries.claim(NOW + 1, 30, 10)
    assert only.delivery.event_id == "evt_progress_w3_1"
    assert await deliveries.claim(NOW + 2, 30, 10) == []
    done = replace(only.delivery, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None)
    await deliveries.record(only, done, 3600)
    [end] = await deliveries.claim(NOW + 5, 30, 10)
    assert end.delivery.event_id == "evt_done_w3"


async def test_a_progress_retry_later_does_not_hold_the_terminal_event(
    deliveries: DeliveryStore,
) -> None:
    """A progress event that failed and waits for a retry (30 minutes off) is superseded
    by the job's terminal event, which goes at once; the superseded one is never sent and
    is listed as such."""
    from dataclasses import replace

    await fan(deliveries, progress("w4", 1))
    [first] = await deliveries.claim(NOW + 1, 30, 10)
    retry = replace(
        first.delivery, status=DeliveryStatus.FAILED, failures=2, next_attempt_at=NOW + 1800
    )
    assert await deliveries.record(first, retry, 3600) == "ok"
    await fan(deliveries, terminal("w4"), NOW + 2)
    [end] = await deliveries.claim(NOW + 3, 30, 10)
    assert end.delivery.event_id == "evt_done_w4"
    channel = await deliveries.get_delivery(first.delivery.id)
    assert channel is not None
    assert channel.status is DeliveryStatus.SUPERSEDED
    assert channel.next_attempt_at is None
    assert channel.failures == 2  # the rest of the record is kept as it was
    sent = replace(end.delivery, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None)
    assert await deliveries.record(end, sent, 3600) == "ok"
    assert await deliveries.claim(NOW + 1801, 30, 10) == []
    listed, _ = await deliveries.list_deliveries(status=DeliveryStatus.SUPERSEDED)
    assert [d.id for d in listed] == [first.delivery.id]


async def test_a_parked_progress_event_does_not_hold_the_terminal_event(
    deliveries: DeliveryStore,
) -> None:
    """A progress channel parked with its disabled subscription does not keep the job's
    terminal event cycling through the queue: the terminal event is claimed (and parked
    by the deliverer in turn), the parked progress superseded."""
    from dataclasses import replace

    await fan(deliveries, progress("w5", 1))
    [first] = await deliveries.claim(NOW + 1, 30, 10)
    parked = replace(first.delivery, status=DeliveryStatus.PENDING, next_attempt_at=None)
    assert await deliveries.record(first, parked, 3600, park=True) == "ok"
    await fan(deliveries, terminal("w5"), NOW + 2)
    [end] = await deliveries.claim(NOW + 3, 30, 10)
    assert end.delivery.event_id == "evt_done_w5"
    channel = await deliveries.get_delivery(first.delivery.id)
    assert channel is not None and channel.status is DeliveryStatus.SUPERSEDED


async def test_a_progress_event_never_tried_is_not_superseded(
    deliveries: DeliveryStore,
) -> None:
    """A progress event deferred at the subscription's cap (pending, due a little later)
    or scored by a replica whose clock runs ahead was never tried: the terminal event
    waits for it rather than superseding it."""
    from dataclasses import replace

    await fan(deliveries, progress("w6", 1), NOW + 0.2)  # a clock 200 ms ahead
    await fan(deliveries, terminal("w6"), NOW)
    assert await deliveries.claim(NOW + 0.1, 30, 10) == []  # the terminal waits
    [first] = await deliveries.claim(NOW + 0.3, 30, 10)
    assert first.delivery.event_id == "evt_progress_w6_1"
    deferred = replace(first.delivery, status=DeliveryStatus.PENDING, next_attempt_at=NOW + 20)
    assert await deliveries.record(first, deferred, 3600) == "ok"  # at the cap: later
    assert await deliveries.claim(NOW + 1, 30, 10) == []
    [again] = await deliveries.claim(NOW + 20, 30, 10)
    assert again.delivery.event_id == "evt_progress_w6_1"


async def test_a_channel_another_replica_moved_on_is_claimed_with_its_new_event(
    store: RedisStore,
) -> None:
    """A replica remembers the progress event it fanned out; another replica's newer one
    replaces it before either claims. The claim sees the channel's event is not the one
    remembered, reads it afresh and leases the channel with the newer event."""
    mine, other = DeliveryStore(store), DeliveryStore(store)
    await fan(mine, progress("w7", 1))
    await fan(other, progress("w7", 2))
    [claimed] = await mine.claim(NOW + 1, 30, 10)
    assert claimed.delivery.event_id == "evt_progress_w7_2"
    assert claimed.event is not None and claimed.event.id == "evt_progress_w7_2"
