"""The redis-py client as the bridge builds it: a blocking pool and C command packing."""

from __future__ import annotations

from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

# A pooled connection that went stale in a Redis restart or failover fails once: retry
# on a fresh one, briefly. A command retried after its answer was lost runs twice:
# writes are compare-and-set or use deterministic ids, so nothing is written twice;
# a claim (watches, deliveries, outbox reads) repeated this way leaves its first batch
# leased until the lease expires, a delay, never a loss.
RETRIES = 3
# What "Redis is not there right now" looks like to callers.
REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)


def connect(url: str, *, max_connections: int = 128) -> aioredis.Redis:
    """A client with a blocking pool: bursts wait for a connection instead of failing."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), RETRIES),
        retry_on_error=list(REDIS_UNAVAILABLE),
    )
    pool.connection_class = with_fast_packing(pool.connection_class)
    return aioredis.Redis(connection_pool=pool)


class _HiredisPacking:
    """Commands packed by hiredis' C packer: redis-py's own costs about seven times the
    CPU, and every bridge operation is a few commands."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # "SCRIPT LOAD": two words
            args = (*args[0].split(), *args[1:])
        for arg in args:  # what redis-py refuses, refused the same way
            if arg is None or isinstance(arg, bool):
                raise DataError(f"Invalid input of type: {type(arg).__name__!r}")
        return [hiredis.pack_command(args)]


def with_fast_packing(cls: type[Any]) -> type[Any]:
    if not hasattr(hiredis, "pack_command") or issubclass(cls, _HiredisPacking):
        return cls
    return type(f"Fast{cls.__name__}", (_HiredisPacking, cls), {})
