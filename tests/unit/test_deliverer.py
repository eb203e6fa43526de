"""The deliverer against a scripted sender, a fake clock and fakeredis: the retry
schedule, dead-lettering, API retry, continuous-failure disabling and its metrics."""

from __future__ import annotations

import pytest

from bridge.model import DeliveryStatus
from tests.unit.helpers import Env


async def test_schedule_runs_out_into_dead_then_api_retry_delivers(deliverer_env: Env) -> None:
    """Four failures on a three-step schedule dead-letter it; a requeue sends it again."""
    await deliverer_env.emit(1)
    deliverer_env.sender.statuses = [500, 500, 500, 500]
    for _ in range(4):
        assert await deliverer_env.run_due() == ["ok"]
        assert await deliverer_env.run_due() == []  # not due before the schedule says so
        deliverer_env.clock.advance(10)
    [dead], _ = await deliverer_env.store.list_deliveries(status=DeliveryStatus.DEAD)
    assert [a.status for a in dead.attempts] == [500] * 4
    assert deliverer_env.count("dead") == 1 and deliverer_env.count("retry") == 3
    assert deliverer_env.metrics.registry.get_sample_value("bridge_deliveries_dead_total") == 1
    assert await deliverer_env.store.requeue(dead, deliverer_env.clock.now()) == "ok"
    assert await deliverer_env.run_due() == ["ok"]
    delivered = await deliverer_env.store.get_delivery(dead.id)
    assert delivered and delivered.status is DeliveryStatus.SUCCEEDED
    assert len({h["webhook-id"] for h in deliverer_env.sender.sent}) == 1


async def test_continuous_failure_disables_and_keeps_deliveries(deliverer_env: Env) -> None:
    """Failing for longer than disable_after disables the subscription, parks its
    deliveries (kept, not dropped) and tells the others; enabling resumes them."""
    await deliverer_env.emit(1)
    deliverer_env.sender.statuses = [500, 500, 500]
    for _ in range(3):  # failures at 0, 13 and 26 s: the last is past disable_after
        await deliverer_env.run_due()
        deliverer_env.clock.advance(13)
    sub = await deliverer_env.store.get_subscription("sub_a")
    assert sub and not sub.enabled and sub.disabled_reason == "failing continuously"
    assert await deliverer_env.store.parked_count("sub_a") == 1
    await deliverer_env.emit(2)  # arrives while disabled: delivered to nobody, kept
    deliverer_env.clock.advance(100)
    assert await deliverer_env.run_due() == ["ok"]  # the new one is parked at its first claim
    assert await deliverer_env.store.parked_count("sub_a") == 2
    assert len(deliverer_env.sender.sent) == 3
    events, _ = await deliverer_env.store.store.events.list_events(type_="subscription.disabled")
    assert len(events) == 1 and events[0].data["subscription_id"] == "sub_a"

    await deliverer_env.store.set_state("sub_a", enabled=True, clear_failing=True)
    assert await deliverer_env.store.unpark("sub_a", deliverer_env.clock.now()) == 2
    await deliverer_env.deliverer.refresh_subscriptions()
    deliverer_env.clock.advance(0.01)  # resumed deliveries are spread a few milliseconds apart
    assert sorted(await deliverer_env.run_due()) == ["ok", "ok"]
    succeeded, _ = await deliverer_env.store.list_deliveries(status=DeliveryStatus.SUCCEEDED)
    assert len(succeeded) == 2


async def test_failure_clock_starts_once_and_a_success_stops_it(deliverer_env: Env) -> None:
    """The continuous-failure start is the first failure's time, kept across failures,
    and cleared by a 2xx; a stale cache never moves it forward."""
    await deliverer_env.emit(1)
    start = deliverer_env.clock.now()
    deliverer_env.sender.statuses = [500, 500, 200]
    await deliverer_env.run_due()
    deliverer_env.clock.advance(10)
    await deliverer_env.deliverer.refresh_subscriptions()
    await deliverer_env.run_due()
    sub = await deliverer_env.store.get_subscription("sub_a")
    assert sub and sub.failing_since == pytest.approx(start)
    assert await deliverer_env.store.mark_failing("sub_a", start + 99) == pytest.approx(start)
    deliverer_env.clock.advance(10)
    assert await deliverer_env.run_due() == ["ok"]
    sub = await deliverer_env.store.get_subscription("sub_a")
    assert sub and sub.enabled and sub.failing_since is None


async def test_stop_ends_even_when_a_cancellation_is_swallowed(deliverer_env: Env) -> None:
    """A fan-out that loses its cancellation (as Python 3.11's wait_for can) still stops:
    the loop ends on the stop flag and the wait for it is bounded."""
    import asyncio
    import contextlib

    entered = asyncio.Event()

    async def swallowing_fan_out() -> int:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # what a library bug does
            await asyncio.Event().wait()  # until cancelled
        return 0

    deliverer_env.deliverer.fan_out = swallowing_fan_out  # type: ignore[method-assign]
    await deliverer_env.deliverer.start()
    await asyncio.wait_for(entered.wait(), 5)
    await asyncio.wait_for(deliverer_env.deliverer.stop(grace_s=1), 10)
    assert (
        deliverer_env.deliverer._fan_out_task is not None
        and deliverer_env.deliverer._fan_out_task.done()
    )


async def test_index_trim_drops_only_expired_deliveries(deliverer_env: Env) -> None:
    """Old index entries go once their delivery expired; old live ones (parked) stay."""
    await deliverer_env.emit(1)
    await deliverer_env.emit(2)
    listed, _ = await deliverer_env.store.list_deliveries()
    expired, alive = listed
    await deliverer_env.store.client.delete(
        deliverer_env.store.keys.delivery(expired.id)
    )  # as PEXPIRE would
    assert (
        await deliverer_env.store.trim_index(deliverer_env.clock.now() - 10, 3600) == 0
    )  # nothing that old
    assert await deliverer_env.store.trim_index(deliverer_env.clock.now() + 7200, 3600) == 1
    ids = await deliverer_env.store.client.zrange(deliverer_env.store.keys.deliveries, 0, -1)
    assert ids == [alive.id]
