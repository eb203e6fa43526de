"""Redis Cluster on real processes (three primaries, a replica each): the bridge
finds every node from one, and a start-up pointed at the wrong kind of Redis says
which setting to change. The store's contract suite also runs here (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.app import Bridge, StartupError
from bridge.errors import StoreUnavailable
from bridge.model import WatchKey
from bridge.settings import load_settings
from bridge.store.connection import COMMAND_TIMEOUT_S, RedisTarget, connect
from bridge.store.embedded import EmbeddedRedis
from bridge.store.redis import RedisStore
from tests.topologies import ClusterSet, SentinelSet

NOW = 1_800_000_000.0
pytestmark = pytest.mark.redis


async def start_error(tmp_path: Path, head: str, target: RedisTarget) -> str:
    cfg = tmp_path / "c.toml"
    cfg.write_text(head + '[api]\nlisten = "127.0.0.1:0"\n')
    bridge = Bridge(load_settings(cfg), redis_url=target)
    with pytest.raises(StartupError) as info:
        await bridge.start()
    await bridge.stop(grace_s=0)
    return str(info.value)


async def test_single_mode_on_a_cluster_node_says_set_cluster_mode(
    tmp_path: Path, redis_cluster: ClusterSet
) -> None:
    line = await start_error(
        tmp_path, f'redis_url = "{redis_cluster.url}"\n', RedisTarget(url=redis_cluster.url)
    )
    assert line == 'redis_url: this Redis is a node of a Redis Cluster; set redis_mode = "cluster"'


async def test_cluster_mode_on_one_server_says_it_is_not_a_cluster(
    tmp_path: Path, sentinel_set: SentinelSet
) -> None:
    url = f"redis://127.0.0.1:{sentinel_set.primary_port}"  # a server without cluster mode
    head = f'redis_mode = "cluster"\nredis_url = "{url}"\n'
    line = await start_error(tmp_path, head, RedisTarget(url=url, cluster=True))
    assert line == (
        'redis_url: this Redis is not a node of a Redis Cluster; set redis_mode = "single"'
    )


async def test_any_node_leads_to_every_other(redis_cluster: ClusterSet) -> None:
    """Each node named alone finds the cluster: a watch registered through one is
    claimed through another."""
    prefix = "anynode"
    first = RedisStore(connect(RedisTarget(url=redis_cluster.url, cluster=True)), prefix)
    last_url = f"redis://127.0.0.1:{redis_cluster.ports[-1]}"  # a replica
    other = RedisStore(connect(RedisTarget(url=last_url, cluster=True)), prefix)
    try:
        watch, _ = await first.register(WatchKey("fs", "users", "j1"), NOW)
        [claimed] = await other.claim(NOW + 1, 30, 5)
        assert claimed.watch.id == watch.id
    finally:
        await first.close()
        await other.close()


@pytest.fixture
def patient_cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    """A cluster whose nodes wait a minute before they fail a silent one over: a frozen
    primary stays the primary while the test runs."""
    topology = ClusterSet(tmp_path / "patient", node_timeout_ms=60_000)
    (tmp_path / "patient").mkdir()
    topology.start()
    yield topology
    topology.stop()


async def test_a_silent_primary_is_told_within_the_command_timeout(
    patient_cluster: ClusterSet,
) -> None:
    """The primary that holds the bridge's keys stops answering (SIGSTOP): ping and the
    server clock ask that node, not any node, and fail within about one command timeout
    (a timed-out command is not sent again); a prefix served by another node answers."""
    here = RedisStore(connect(RedisTarget(url=patient_cluster.url, cluster=True)), "here")
    port = patient_cluster.primary_of(here.keys.marker)
    other_prefix = next(
        p for p in (f"p{i}" for i in range(100))
        if patient_cluster.primary_of("{" + p + "}") != port
    )  # fmt: skip
    there = RedisStore(connect(RedisTarget(url=patient_cluster.url, cluster=True)), other_prefix)
    try:
        assert await here.ping() and await there.ping()
        patient_cluster.freeze(port)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await here.ping()
        assert time.monotonic() - started < COMMAND_TIMEOUT_S + 1.5
        with pytest.raises(StoreUnavailable):
            await here.server_time()
        assert await there.server_time() > 1_700_000_000
    finally:
        patient_cluster.thaw(port)
        await here.close()
        await there.close()


async def test_calls_beyond_the_pool_wait_for_room(redis_cluster: ClusterSet) -> None:
    """Far more calls at once than connections per node: each waits its turn (as with
    one server's blocking pool), none fails."""
    store = RedisStore(
        connect(RedisTarget(url=redis_cluster.url, cluster=True), max_connections=4), "room"
    )
    try:
        await store.register(WatchKey("fs", "users", "j"), NOW)
        answers = await asyncio.gather(
            *(store.watch_counts() for _ in range(150)), return_exceptions=True
        )
        assert not [a for a in answers if isinstance(a, BaseException)]
    finally:
        await store.close()


async def test_a_user_without_info_is_not_asked_whether_it_is_a_cluster(
    redis_server: EmbeddedRedis, prefix: str
) -> None:
    """The mismatch check at start-up asks INFO; a least-privilege user that may not
    run it (ACL -@dangerous) still starts: the check is skipped."""
    admin = connect(redis_server.url)
    user, password = f"u{prefix}", "pw-" + prefix
    await admin.execute_command(
        "ACL", "SETUSER", user, "on", f">{password}", "~*", "+@all", "-@dangerous"
    )
    url = f"unix://{user}:{password}@{redis_server.socket}"
    store = RedisStore(connect(url), prefix)
    try:
        assert await store.is_cluster_node() is False
        assert await store.ping()
    finally:
        await store.close()
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()
