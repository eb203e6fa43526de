"""Redis Cluster on real processes (three primaries, a replica each): the bridge
finds every node from one, and a start-up pointed at the wrong kind of Redis says
which setting to change. The store's contract suite also runs here (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.app import Bridge, StartupError
from bridge.model import WatchKey
from bridge.settings import load_settings
from bridge.store.connection import RedisTarget, connect
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
