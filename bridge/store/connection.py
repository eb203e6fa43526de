"""The redis-py client as the bridge builds it: a blocking pool and C command packing."""

from __future__ import annotations

from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError

# A pooled connection that went stale in a Redis restart or failover fails once: retry
# on a fresh one, briefly. Only refused or broken connections are retried: a command
# that timed out may have run, and a Redis that stopped answering must be told to the
# caller within a bound (API 503, readiness), not after several more timeouts.
RETRIES = 3
# Every command the bridge sends is short (scripts touch a bounded number of keys): an
# answer later than this means Redis is not answering. Waiting for a pooled connection
# is bounded the same way, so an API call fails within about twice this.
COMMAND_TIMEOUT_S = 2.0


def check_url(url: str) -> None:
    """ValueError when the client could not use this URL (as `connect` would read it)."""
    parse_url(url)  # type: ignore[no-untyped-call]


def connect(url: str, *, max_connections: int = 128) -> aioredis.Redis:
    """A client with a blocking pool: bursts wait for a connection instead of failing."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=COMMAND_TIMEOUT_S,
        decode_responses=True,
        socket_connect_timeout=COMMAND_TIMEOUT_S,
        socket_timeout=COMMAND_TIMEOUT_S,
        retry=Retry(
            ExponentialWithJitterBackoff(base=0.05, cap=0.5),
            RETRIES,
            supported_errors=(RedisConnectionError,),
        ),
        retry_on_timeout=False,
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
