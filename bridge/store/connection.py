"""The redis-py client as the bridge builds it: a blocking pool and C command packing,
to one server or to the primary a set of Sentinels names (followed across failovers);
or redis-py's cluster client, which finds every node from any one and follows MOVED,
ASK and promotions itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import parse_url as _parse_url
from redis.exceptions import (
    AuthenticationError,
    ClusterDownError,
    DataError,
    RedisError,
    SlotNotCoveredError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# A pooled connection that went stale in a Redis restart or failover fails once: retry
# on a fresh one, briefly. Only refused or broken connections are retried: a command
# that timed out may have run, and a Redis that stopped answering must be told to the
# caller within a bound (API 503, readiness), not after several more timeouts.
RETRIES = 3
# Every command the bridge sends is short (scripts touch a bounded number of keys): an
# answer later than this means Redis is not answering. Waiting for a pooled connection
# is bounded the same way, so an API call fails within about twice this.
COMMAND_TIMEOUT_S = 2.0
# The cluster client retries a command whose node went away or whose slot has no
# primary yet (ClusterDownError) after asking the cluster where the slots are now: a
# replica's promotion takes a few seconds (cluster-node-timeout and an election). A
# call gets CLUSTER_CALL_BOUND_S in all, retries included.
CLUSTER_RETRIES = 6
CLUSTER_CALL_BOUND_S = 6.0

T = TypeVar("T")


def check_url(url: str) -> None:
    """ValueError when the client could not use this URL (as `connect` would read it)."""
    parse_url(url)


def parse_url(url: str) -> dict[str, Any]:
    """The URL as the client reads it (host, port, db, credentials, …)."""
    return dict(_parse_url(url))  # type: ignore[no-untyped-call]


def split_address(entry: str) -> tuple[str, int]:
    """ "host:port" (an IPv6 host in brackets) → (host, port); ValueError otherwise."""
    host, sep, port = entry.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("not HOST:PORT (e.g. 10.0.0.5:26379)")
    return host, int(port)


@dataclass(frozen=True)
class RedisTarget:
    """Where the bridge's Redis is: one server (`url`), or the primary that a set of
    Sentinels name `master`. With Sentinel, `url` (optional) gives the primary's scheme
    (rediss:// for TLS), user, password and database; its host is not used."""

    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str | None = None
    sentinel_password: str | None = None
    cluster: bool = False  # url names one node of a Redis Cluster; the rest are found

    @property
    def mode(self) -> str:
        return "sentinel" if self.sentinels else "cluster" if self.cluster else "single"


def _options(max_connections: int) -> dict[str, Any]:
    return {
        "max_connections": max_connections,
        "timeout": COMMAND_TIMEOUT_S,
        "decode_responses": True,
        "socket_connect_timeout": COMMAND_TIMEOUT_S,
        "socket_timeout": COMMAND_TIMEOUT_S,
        "retry": Retry(
            ExponentialWithJitterBackoff(base=0.05, cap=0.5),
            RETRIES,
            supported_errors=(RedisConnectionError,),
        ),
        "retry_on_timeout": False,
    }


def connect(target: str | RedisTarget, *, max_connections: int = 128) -> aioredis.Redis:
    """A client with a blocking pool: bursts wait for a connection instead of failing."""
    if isinstance(target, str):
        target = RedisTarget(url=target)
    if target.mode == "sentinel":
        return _connect_sentinel(target, max_connections)
    assert target.url is not None
    if target.mode == "cluster":
        return _connect_cluster(target.url, max_connections)
    pool = aioredis.BlockingConnectionPool.from_url(target.url, **_options(max_connections))
    pool.connection_class = with_fast_packing(pool.connection_class)
    return aioredis.Redis(connection_pool=pool)


async def close_client(client: aioredis.Redis) -> None:
    """Close a client built by `connect`, and with Sentinel the clients of the Sentinels."""
    await client.aclose()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


class BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's pool (it asks the Sentinels for the primary on every new connection,
    and drops idle ones when the primary changed) that waits for a free connection."""


def _connect_sentinel(target: RedisTarget, max_connections: int) -> aioredis.Redis:
    primary: dict[str, Any] = {}
    if target.url:
        primary = parse_url(target.url)
        for unused in ("host", "port", "path"):
            primary.pop(unused, None)
        if primary.pop("connection_class", None) is not None and target.url.startswith("rediss"):
            primary["ssl"] = True
    timeouts = {"socket_timeout": COMMAND_TIMEOUT_S, "socket_connect_timeout": COMMAND_TIMEOUT_S}
    sentinel_kwargs: dict[str, Any] = {**timeouts, "decode_responses": True}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    manager = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
    client = manager.master_for(
        target.master or "",
        redis_class=aioredis.Redis,
        connection_pool_class=BlockingSentinelPool,
        **{**_options(max_connections), **primary},
    )
    pool = client.connection_pool
    pool.connection_class = with_fast_packing(pool.connection_class)
    return cast(aioredis.Redis, client)


class BridgeCluster(RedisCluster):
    """redis-py's cluster client as the bridge needs it.

    - A call waits for room instead of failing: redis-py's cluster pool raises
      MaxConnectionsError when a node's connections are all in use (one server's pool
      waits), so at most max_connections calls run at once.
    - A call ends within CLUSTER_CALL_BOUND_S in all, its retries after a failover
      included: a node that stops answering is told to the caller (API 503, readiness)
      as with one server, not after six more timeouts.
    - A command that timed out is not sent again (it may have run)."""

    ERRORS_ALLOW_RETRY = (  # type: ignore[assignment]  # redis-py's, less TimeoutError
        RedisConnectionError,
        ClusterDownError,
        SlotNotCoveredError,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._room = asyncio.Semaphore(int(kwargs.get("max_connections", 100)))

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._room:
            return await _bounded(super().execute_command(*args, **kwargs))

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        async def bounded_execute(*args: Any, **kwargs: Any) -> Any:
            async with self._room:
                return await _bounded(execute(*args, **kwargs))

        pipe.execute = bounded_execute  # type: ignore[method-assign]
        return pipe


async def _bounded(call: Awaitable[T]) -> T:
    try:
        async with asyncio.timeout(CLUSTER_CALL_BOUND_S):
            return await call
    except TimeoutError:
        raise RedisTimeoutError(
            f"no answer from the cluster within {CLUSTER_CALL_BOUND_S:g} s"
        ) from None


def _connect_cluster(url: str, max_connections: int) -> aioredis.Redis:
    """The cluster client (BridgeCluster), up to max_connections calls at once."""
    options = _options(max_connections)
    for unused in ("timeout", "retry", "retry_on_timeout"):
        options.pop(unused)
    client = BridgeCluster.from_url(
        url,
        **options,
        retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=1.0), CLUSTER_RETRIES),
    )
    # The same calls as on one server (the stores use only what both clients have).
    return cast(aioredis.Redis, client)


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


async def explain_cluster(url: str) -> str | None:
    """Why cluster mode finds no cluster at url when the server there answers (it is
    no cluster node): a start-up error naming the setting; None otherwise."""
    client = aioredis.Redis.from_url(
        url, socket_timeout=COMMAND_TIMEOUT_S, socket_connect_timeout=COMMAND_TIMEOUT_S
    )
    try:
        info = await client.info("cluster")
    except RedisError:
        return None
    finally:
        await client.aclose()
    if int(info.get("cluster_enabled", 0)):
        return None
    return 'redis_url: this Redis is not a node of a Redis Cluster; set redis_mode = "single"'


async def explain_sentinels(target: RedisTarget) -> str:
    """Why no primary answers, asked of each Sentinel in turn and then of the primary
    they name: one line for a start-up error, naming the setting to fix."""
    found: list[str] = []
    named: tuple[str, int] | None = None
    for host, port in target.sentinels:
        client = aioredis.Redis(
            host=host,
            port=port,
            password=target.sentinel_password,
            socket_timeout=COMMAND_TIMEOUT_S,
            socket_connect_timeout=COMMAND_TIMEOUT_S,
            decode_responses=True,
        )
        where = f"{host}:{port}"
        try:
            answer: Any = await client.sentinel_get_master_addr_by_name(target.master or "")
        except AuthenticationError:
            found.append(f"{where} refused redis_sentinel_password")
        except (RedisConnectionError, RedisTimeoutError):
            found.append(f"{where} could not be reached")
        except RedisError as exc:
            found.append(f"{where} answered {type(exc).__name__}")
        else:
            if answer:
                named = (str(answer[0]), int(answer[1]))
            else:
                found.append(f"{where} monitors no primary named by redis_sentinel_master")
        finally:
            await client.aclose()
        if named:
            break
    if named is None:
        return "redis_sentinels: no Sentinel names the primary: " + "; ".join(found)
    return await _explain_primary(target, named)


async def _explain_primary(target: RedisTarget, address: tuple[str, int]) -> str:
    primary: dict[str, Any] = {}
    if target.url:
        primary = parse_url(target.url)
        for unused in ("host", "port", "path", "connection_class"):
            primary.pop(unused, None)
    tls = bool(target.url and target.url.startswith("rediss"))
    client = aioredis.Redis(
        host=address[0],
        port=address[1],
        socket_timeout=COMMAND_TIMEOUT_S,
        socket_connect_timeout=COMMAND_TIMEOUT_S,
        ssl=tls,
        **primary,
    )
    where = f"the primary the Sentinels name ({address[0]}:{address[1]})"
    try:
        await client.ping()
    except AuthenticationError:
        return f"redis_url: {where} refused the user or password"
    except RedisError as exc:
        return f"redis_sentinels: {where} does not answer: {type(exc).__name__}"
    finally:
        await client.aclose()
    return f"redis_sentinels: {where} answers now; it did not a moment ago"
