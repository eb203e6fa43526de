"""Delivery faults found in review: send-time exceptions, stale subscription caches,
deleted subscriptions, index trims, consumers, un-parking and the per-subscription cap."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bridge.delivery.sender import SendResult
from bridge.model import DeliveryStatus
from tests.unit.helpers import URL, Env


class ExplodingSender:
    """A sender whose HTTP client raises what nobody foresaw (aiohttp on a bad header)."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        self.calls += 1
        raise ValueError("Newline or carriage return character detected in HTTP header")


async def test_an_exception_at_send_time_is_a_failed_attempt_then_dead(deliverer_env: Env) -> None:
    """Never reclaimed forever: each raise is a recorded attempt; the schedule ends in dead."""
    exploding = ExplodingSender()
    deliverer_env.deliverer._sender = exploding
    await deliverer_env.emit(1)
    for _ in range(4):
        assert await deliverer_env.run_due() == ["ok"]
        deliverer_env.clock.advance(10)
    [dead], _ = await deliverer_env.store.list_deliveries(status=DeliveryStatus.DEAD)
    assert exploding.calls == 4
    assert [a.error for a in dead.attempts] == ["request failed: ValueError"] * 4


async def test_stored_headers_that_are_no_longer_allowed_are_not_sent(deliverer_env: Env) -> None:
    """Headers saved by an older version (a smuggling one, say) are dropped at send time."""
    sub = await deliverer_env.store.get_subscription("sub_a")
    assert sub
    bad = (("Content-Length", "0"), ("X-Evil\n", "1"), ("X-Ok", "yes"), ("X-Nul", "a\x00"))
    await deliverer_env.store.save_subscription(replace(sub, headers=bad))
    await deliverer_env.emit(1)
    assert await deliverer_env.run_due() == ["ok"]
    [sent] = deliverer_env.sender.sent
    assert sent["X-Ok"] == "yes"
    assert not {"Content-Length", "X-Evil\n", "X-Nul"} & set(sent)


async def test_a_claim_uses_the_subscription_as_it_is_now(deliverer_env: Env) -> None:
    """A change saved just before the claim is what the attempt uses (no stale cache)."""
    seen: list[str] = []

    class Recording:
        async def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
            seen.append(url)
            return SendResult(200, 0.01)

    deliverer_env.deliverer._sender = Recording()
    await deliverer_env.emit(1)  # the cache is fresh here
    sub = await deliverer_env.store.get_subscription("sub_a")
    assert sub
    await deliverer_env.store.save_subscription(replace(sub, url=URL + "/moved"))
    claimed = await deliverer_env.deliverer._claim(10)
    assert [await deliverer_env.deliverer.attempt(c) for c in claimed] == ["ok"]
    assert seen == [URL + "/moved"]


async def test_deleted_subscription_deliveries_end_dead_and_expire(deliverer_env: Env) -> None:
    """Parked deliveries of a deleted subscription come back, are recorded dead, get a TTL."""
    await deliverer_env.store.set_state("sub_a", enabled=False, disabled_reason="test")
    await deliverer_env.deliverer.refresh_subscriptions()
    await deliverer_env.emit(1)
    assert await deliverer_env.run_due() == ["ok"]
    assert await deliverer_env.store.parked_count("sub_a") == 1
    assert await deliverer_env.store.delete_subscription("sub_a", deliverer_env.clock.now())
    assert await deliverer_env.store.parked_count("sub_a") == 0
    await deliverer_env.deliverer.refresh_subscriptions()
    assert await deliverer_env.run_due() == ["ok"]
    [dead], _ = await deliverer_env.store.list_deliveries(status=DeliveryStatus.DEAD)
    assert dead.attempts[-1].error == "subscription deleted"
    assert await deliverer_env.store.client.pttl(deliverer_env.store.keys.delivery(dead.id)) > 0


async def test_index_trim_looks_past_live_entries_at_the_head(deliverer_env: Env) -> None:
    """600 live (parked) deliveries ahead of expired ones do not stop the trim."""
    index = deliverer_env.store.keys.deliveries
    live = {f"dlv_live_{i:04d}": 1 for i in range(600)}
    gone = {f"dlv_gone_{i:04d}": 2 for i in range(50)}
    await deliverer_env.store.client.zadd(index, {**live, **gone})
    pipe = deliverer_env.store.client.pipeline()
    for delivery_id in live:
        pipe.hset(deliverer_env.store.keys.delivery(delivery_id), "status", "failed")
    await pipe.execute()
    assert await deliverer_env.store.trim_index(deliverer_env.clock.now(), 60) == 50
    assert await deliverer_env.store.client.zcard(index) == 600


async def test_consumers_are_forgotten(deliverer_env: Env) -> None:
    """A stopping deliverer deletes its consumer; idle empty ones are dropped by upkeep."""
    await deliverer_env.emit(1)  # reads as this deliverer's consumer, then acks
    client, outbox = deliverer_env.store.client, deliverer_env.store.keys.outbox
    consumers = await client.xinfo_consumers(outbox, "deliverers")
    assert len(consumers) == 1
    assert await deliverer_env.store.drop_consumer(deliverer_env.deliverer._consumer)
    assert await client.xinfo_consumers(outbox, "deliverers") == []
    await client.xreadgroup("deliverers", "old-host-1", {outbox: "0"}, count=1)
    assert await deliverer_env.store.drop_idle_consumers(3600) == 0  # just active: kept
    assert await deliverer_env.store.drop_idle_consumers(0) == 1
    assert await client.xinfo_consumers(outbox, "deliverers") == []


async def test_unparking_is_batched_and_spread(deliverer_env: Env) -> None:
    """2,500 parked deliveries come back in bounded batches, a few ms apart each."""
    key = deliverer_env.store.keys.parked("sub_a")
    await deliverer_env.store.client.zadd(key, {f"dlv_{i:05d}": i for i in range(2500)})
    now = deliverer_env.clock.now()
    assert await deliverer_env.store.unpark("sub_a", now, spacing_s=0.01, batch=1000) == 2500
    due = await deliverer_env.store.client.zrange(
        deliverer_env.store.keys.deliveries_due, 0, -1, withscores=True
    )
    scores = sorted(score for _, score in due)
    assert len(scores) == 2500 and await deliverer_env.store.client.exists(key) == 0
    assert scores[0] == round(now * 1000) and scores[-1] - scores[0] >= 24_000


async def test_at_the_cap_workers_wait_in_memory_not_on_redis(deliverer_env: Env) -> None:
    """A subscription at its cap: the next attempts wait for a slot without writing to
    Redis, and go as soon as one frees up."""
    release = asyncio.Event()
    started: list[str] = []

    class Slow:
        async def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
            started.append(headers["webhook-id"])
            await release.wait()
            return SendResult(200, 0.01)

    deliverer_env.deliverer._sender = Slow()
    deliverer_env.deliverer._settings = deliverer_env.deliverer._settings.model_copy(
        update={"per_subscription_concurrency": 2}
    )
    deliverer_env.deliverer._slots.clear()
    for n in range(4):
        await deliverer_env.emit(n)
    claimed = await deliverer_env.store.claim(deliverer_env.clock.now(), 60, 100)
    assert len(claimed) == 4
    tasks = [asyncio.ensure_future(deliverer_env.deliverer.attempt(c)) for c in claimed]
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(started) == 2  # two in flight, two waiting in memory
    assert await deliverer_env.store.queue_depth() == 0  # nothing was deferred back to Redis
    release.set()
    assert await asyncio.gather(*tasks) == ["ok"] * 4
    assert len(started) == 4
