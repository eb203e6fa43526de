"""Redis behind Sentinel, on real processes: a primary, a replica and three Sentinels.
The store works through the Sentinels and follows a failover with the same client."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.errors import StoreError
from bridge.model import WatchKey
from bridge.store.connection import RedisTarget, connect, explain_sentinels
from bridge.store.redis import RedisStore
from tests.e2e.harness import free_port
from tests.topologies import MASTER, SentinelSet

NOW = 1_800_000_000.0
pytestmark = pytest.mark.redis


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    topology = SentinelSet(tmp_path, password=SENTINEL_PASSWORD)
    topology.start()
    yield topology
    topology.stop()


SENTINEL_PASSWORD = "sentinel-secret"


def target(topology: SentinelSet, password: str | None = SENTINEL_PASSWORD) -> RedisTarget:
    return RedisTarget(sentinels=topology.sentinels, master=MASTER, sentinel_password=password)


async def test_the_store_follows_the_primary_across_a_failover(sentinels: SentinelSet) -> None:
    client = connect(target(sentinels))
    store = RedisStore(client, "bridge")
    try:
        watch, created = await store.register(WatchKey("fs", "users", "job-1"), NOW)
        assert created
        assert await client.execute_command("WAIT", 1, 2000) == 1  # on the replica too
        old = sentinels.kill_primary()
        assert sentinels.wait_for_promotion(old)[1] == sentinels.replica_port
        # a call in the switch fails once (its connection was to the dead primary, as
        # every loop of the bridge sees it); the next asks the Sentinels again
        with contextlib.suppress(StoreError):
            await store.ping()
        assert await store.ping()
        # the same client, now on the promoted replica: the watch is there, writes go
        assert (await store.get_watch(watch.id)) == watch
        again, created = await store.register(WatchKey("fs", "users", "job-2"), NOW)
        assert created
        [claimed, *_] = await store.claim(NOW, 30, 10)
        assert claimed.watch.id in (watch.id, again.id)
    finally:
        await client.aclose()


async def test_a_wrong_sentinel_password_is_a_clear_error(sentinels: SentinelSet) -> None:
    client = connect(target(sentinels, password="wrong"))
    store = RedisStore(client, "bridge")
    try:
        with pytest.raises(StoreError) as failed:
            await store.ping()
        assert "wrong" not in str(failed.value)
    finally:
        await client.aclose()


async def test_a_start_up_failure_names_what_to_fix(sentinels: SentinelSet) -> None:
    """The Sentinels unreachable, the wrong name, the wrong password: each its own line,
    naming the setting, never the password."""
    wrong_name = RedisTarget(sentinels=sentinels.sentinels, master="nope",
                             sentinel_password=SENTINEL_PASSWORD)  # fmt: skip
    line = await explain_sentinels(wrong_name)
    assert line.startswith("redis_sentinels: no Sentinel names the primary")
    assert "monitors no primary named by redis_sentinel_master" in line
    line = await explain_sentinels(target(sentinels, password="wrong-secret"))
    assert "refused redis_sentinel_password" in line and "wrong-secret" not in line
    closed = RedisTarget(sentinels=(("127.0.0.1", free_port()),), master=MASTER)
    assert "could not be reached" in await explain_sentinels(closed)
    bad_primary = RedisTarget(
        url="redis://app:wrong-pw@ignored/0",
        sentinels=sentinels.sentinels,
        master=MASTER,
        sentinel_password=SENTINEL_PASSWORD,
    )
    line = await explain_sentinels(bad_primary)
    assert line.startswith("redis_url: the primary the Sentinels name") and "wrong-pw" not in line
