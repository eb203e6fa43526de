"""The deliverer against a scripted sender, a fake clock and fakeredis: the retry
schedule, dead-lettering, API retry, continuous-failure disabling and its metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import fakeredis
import pytest

from bridge.clock import FakeClock
from bridge.delivery.deliverer import Deliverer
from bridge.delivery.sender import SendResult
from bridge.delivery.signing import new_secret
from bridge.events import iso_ms
from bridge.metrics import Metrics
from bridge.model import DeliveryStatus, Event, Subscription
from bridge.settings import DeliverySettings
from bridge.store.deliveries import DeliveryStore
from bridge.store.redis import RedisStore

URL = "https://hooks.example.com/in"


class ScriptedSender:
    """Answers each send with the next scripted status; records what was sent."""

    def __init__(self) -> None:
        self.statuses: list[int | None] = []
        self.sent: list[dict[str, str]] = []

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        self.sent.append(headers)
        status = self.statuses.pop(0) if self.statuses else 200
        error = None if status is not None and 200 <= status < 300 else f"HTTP {status}"
        return SendResult(status, 0.01, error=error)


@dataclass
class Env:
    store: DeliveryStore
    clock: FakeClock
    sender: ScriptedSender
    deliverer: Deliverer
    metrics: Metrics

    async def emit(self, n: int) -> Event:
        now = self.clock.now()
        event = Event(
            id=f"evt_{n}",
            type="import.failed",
            timestamp=iso_ms(now),
            watch_id=f"w{n}",
            data={"source": "fs", "job_id": f"j{n}"},
        )
        await self.store.emit(event, now, 3600)
        await self.deliverer.refresh_subscriptions()
        await self.deliverer.fan_out()
        return event

    async def run_due(self) -> list[str]:
        """Claim what is due now and attempt each, as a worker would."""
        claimed = await self.store.claim(self.clock.now(), 60, 100)
        return [await self.deliverer.attempt(c) for c in claimed]

    def count(self, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "bridge_deliveries_total", {"outcome": outcome}
        )
        return value or 0.0


@pytest.fixture
async def env(prefix: str) -> AsyncIterator[Env]:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = DeliveryStore(RedisStore(client, prefix))
    await store.ensure_group()
    clock = FakeClock()
    await store.save_subscription(
        Subscription(id="sub_a", url=URL, secrets=((new_secret(), None),))
    )
    sender = ScriptedSender()
    metrics = Metrics()
    settings = DeliverySettings(retry_schedule=[10, 10, 10], disable_after=25)
    deliverer = Deliverer(
        store=store,
        sender=sender,
        settings=settings,
        clock=clock,
        metrics=metrics,
        rand=lambda: 0.5,  # no jitter
    )
    yield Env(store, clock, sender, deliverer, metrics)
    await client.aclose()


async def test_schedule_runs_out_into_dead_then_api_retry_delivers(env: Env) -> None:
    """Four failures on a three-step schedule dead-letter it; a requeue sends it again."""
    await env.emit(1)
    env.sender.statuses = [500, 500, 500, 500]
    for _ in range(4):
        assert await env.run_due() == ["ok"]
        assert await env.run_due() == []  # not due before the schedule says so
        env.clock.advance(10)
    [dead], _ = await env.store.list_deliveries(status=DeliveryStatus.DEAD)
    assert [a.status for a in dead.attempts] == [500] * 4
    assert env.count("dead") == 1 and env.count("retry") == 3
    assert env.metrics.registry.get_sample_value("bridge_deliveries_dead_total") == 1
    assert await env.store.requeue(dead, env.clock.now()) == "ok"
    assert await env.run_due() == ["ok"]
    delivered = await env.store.get_delivery(dead.id)
    assert delivered and delivered.status is DeliveryStatus.SUCCEEDED
    assert len({h["webhook-id"] for h in env.sender.sent}) == 1


async def test_continuous_failure_disables_and_keeps_deliveries(env: Env) -> None:
    """Failing for longer than disable_after disables the subscription, parks its
    deliveries (kept, not dropped) and tells the others; enabling resumes them."""
    await env.emit(1)
    env.sender.statuses = [500, 500, 500]
    for _ in range(3):  # failures at 0, 13 and 26 s: the last is past disable_after
        await env.run_due()
        env.clock.advance(13)
    sub = await env.store.get_subscription("sub_a")
    assert sub and not sub.enabled and sub.disabled_reason == "failing continuously"
    assert await env.store.parked_count("sub_a") == 1
    await env.emit(2)  # arrives while disabled: delivered to nobody, kept
    env.clock.advance(100)
    assert await env.run_due() == ["ok"]  # the new one is parked at its first claim
    assert await env.store.parked_count("sub_a") == 2
    assert len(env.sender.sent) == 3
    events, _ = await env.store.store.list_events(type_="subscription.disabled")
    assert len(events) == 1 and events[0].data["subscription_id"] == "sub_a"

    await env.store.set_state("sub_a", enabled=True, clear_failing=True)
    assert await env.store.unpark("sub_a", env.clock.now()) == 2
    await env.deliverer.refresh_subscriptions()
    env.clock.advance(0.01)  # resumed deliveries are spread a few milliseconds apart
    assert sorted(await env.run_due()) == ["ok", "ok"]
    succeeded, _ = await env.store.list_deliveries(status=DeliveryStatus.SUCCEEDED)
    assert len(succeeded) == 2


async def test_failure_clock_starts_once_and_a_success_stops_it(env: Env) -> None:
    """The continuous-failure start is the first failure's time, kept across failures,
    and cleared by a 2xx; a stale cache never moves it forward."""
    await env.emit(1)
    start = env.clock.now()
    env.sender.statuses = [500, 500, 200]
    await env.run_due()
    env.clock.advance(10)
    await env.deliverer.refresh_subscriptions()
    await env.run_due()
    sub = await env.store.get_subscription("sub_a")
    assert sub and sub.failing_since == pytest.approx(start)
    assert await env.store.mark_failing("sub_a", start + 99) == pytest.approx(start)
    env.clock.advance(10)
    assert await env.run_due() == ["ok"]
    sub = await env.store.get_subscription("sub_a")
    assert sub and sub.enabled and sub.failing_since is None


async def test_stop_ends_even_when_a_cancellation_is_swallowed(env: Env) -> None:
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

    env.deliverer.fan_out = swallowing_fan_out  # type: ignore[method-assign]
    await env.deliverer.start()
    await asyncio.wait_for(entered.wait(), 5)
    await asyncio.wait_for(env.deliverer.stop(grace_s=1), 10)
    assert env.deliverer._fan_out_task is not None and env.deliverer._fan_out_task.done()


async def test_index_trim_drops_only_expired_deliveries(env: Env) -> None:
    """Old index entries go once their delivery expired; old live ones (parked) stay."""
    await env.emit(1)
    await env.emit(2)
    listed, _ = await env.store.list_deliveries()
    expired, alive = listed
    await env.store.client.delete(env.store.keys.delivery(expired.id))  # as PEXPIRE would
    assert await env.store.trim_index(env.clock.now() - 10, 3600) == 0  # nothing that old
    assert await env.store.trim_index(env.clock.now() + 7200, 3600) == 1
    ids = await env.store.client.zrange(env.store.keys.deliveries, 0, -1)
    assert ids == [alive.id]
