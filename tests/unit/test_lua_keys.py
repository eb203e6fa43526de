"""Every Lua script touches only the keys it declares (what Redis Cluster needs).

The store fixture audits every store test on the real Redis (tests/lua_audit.py); the
scripts those tests do not reach run here, and the audit itself is shown to catch a
script that builds a key name inside Lua.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bridge.events import disabled_event
from bridge.model import Attempt, Delivery, DeliveryStatus
from bridge.store import scripts
from bridge.store.connection import connect
from bridge.store.deliveries import DeliveryStore, delivery_id
from bridge.store.embedded import EmbeddedRedis
from bridge.store.redis import RedisStore
from tests.lua_audit import NAMES, KeyAudit

NOW = 1_764_000_000.0


@pytest.fixture
async def audited(
    redis_server: EmbeddedRedis, prefix: str
) -> AsyncIterator[tuple[RedisStore, KeyAudit]]:
    client = connect(redis_server.url)
    audit = KeyAudit(str(redis_server.socket))
    await audit.start()
    yield RedisStore(client, prefix), audit
    await audit.stop()
    await client.aclose()


@pytest.mark.redis
async def test_the_audit_names_a_key_built_inside_lua(
    audited: tuple[RedisStore, KeyAudit],
) -> None:
    """The rule broken once: a script that builds its key from an argument."""
    store, audit = audited
    source = "redis.call('SET', KEYS[1], 1); return redis.call('INCR', ARGV[1] .. ':n')"
    bad = store.client.register_script(source)
    NAMES[bad.sha] = "bad"
    try:
        await bad(keys=[store.keys.marker], args=[store.keys.marker])
        violations = await audit.check(store.client)
    finally:
        del NAMES[bad.sha]
    assert [(v.script, v.key) for v in violations] == [("bad", store.keys.marker + ":n")]


@pytest.mark.redis
async def test_the_scripts_the_store_tests_leave_out(
    audited: tuple[RedisStore, KeyAudit],
) -> None:
    """Health events, emitted events, requeues, parking and unparking, failing clocks
    and lock renewal, on a real Redis, each touching only its KEYS."""
    store, audit = audited
    deliveries = DeliveryStore(store)
    event = disabled_event(subscription_id="sub_1", url="https://x.test/h", reason="r", now=NOW)
    await store.sources.set_health("fs", False, "down", NOW, event, 3600)
    assert await deliveries.emit(event, NOW, 3600) is False  # set_health wrote it
    assert await deliveries.mark_failing("sub_1", NOW) == NOW
    d = Delivery(
        id=delivery_id(event.id, "sub_1"),
        event_id=event.id,
        subscription_id="sub_1",
        status=DeliveryStatus.PENDING,
        created_at=NOW,
        detected_at=NOW,
    )
    await deliveries.add_deliveries([d], NOW)
    [claimed] = await deliveries.claim(NOW, 30, 10)
    failed = claimed.delivery.failed(Attempt(at=NOW, status=500, latency_s=0.1), NOW + 60)
    assert await deliveries.record(claimed, failed, 3600, park=True) == "ok"
    assert await deliveries.unpark("sub_1", NOW) == 1
    [claimed] = await deliveries.claim(NOW + 1, 30, 10)
    dead = claimed.delivery.dead(Attempt(at=NOW, status=500, latency_s=0.1))
    assert await deliveries.record(claimed, dead, 3600) == "ok"
    assert await deliveries.requeue(dead, NOW + 2) == "ok"
    assert await store.sources.try_lock("chore", "me", 30)
    assert await store.sources.extend_lock("chore", "me", 30)
    await store.sources.unlock("chore", "me")
    assert await audit.check(store.client) == []
    wanted = {
        "set_health",
        "delivery_emit",
        "delivery_mark_failing",
        "delivery_unpark",
        "delivery_requeue",
        "extend_if_equals",
        "delete_if_equals",
    }
    assert wanted <= audit.seen
    assert wanted <= set(scripts.SOURCES)
