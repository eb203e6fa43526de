"""redis-py's exceptions become the bridge's here, and nowhere else (as httpx maps
httpcore's at its one edge): every public coroutine of a store class is wrapped, so no
caller ever sees a redis-py exception.

    ConnectionError, TimeoutError            → StoreUnavailable
    NOSCRIPT after the client loaded it      → StoreUnavailable (Redis restarted or failed
                                               over between the load and the run)
    a cluster's slot without a primary yet   → StoreUnavailable (CLUSTERDOWN, TRYAGAIN,
                                               MOVED or ASK past the client's retries)
    OOM, READONLY, MISCONF error replies     → StoreRefusesWrites
    any other RedisError                     → StoreError
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge.errors import StoreError, StoreRefusesWrites, StoreUnavailable

# Inside a script Redis 6.2 wraps the reply in "ERR Error running script … -OOM …";
# redis-py cuts the code off the OOM and READONLY replies it knows.
_REFUSING = ("OOM ", "READONLY ", "MISCONF ")


def refuses_writes(exc: BaseException) -> bool:
    """Whether this is Redis refusing a write for a while (not a bug of the caller)."""
    if isinstance(exc, OutOfMemoryError | ReadOnlyError):
        return True
    if not isinstance(exc, ResponseError):
        return False
    text = str(exc)
    return text.startswith(_REFUSING) or any(f"-{r}" in text or f": {r}" in text for r in _REFUSING)


# What a cluster answers while a slot moves or its primary is being replaced, once
# the client's own retries are spent: it will pass.
_PASSING = (ClusterDownError, TryAgainError, AskError, SlotNotCoveredError)
# redis-py loads a script once on NOSCRIPT and runs it again: NOSCRIPT still (or from a
# pipeline that loaded it) means the server was replaced meanwhile, and will be back.
_REPLACED = (NoScriptError,)


def _unreachable(exc: BaseException) -> bool:
    # redis-py's cluster client says no node answered with this exception's base class
    return type(exc) is RedisClusterException and "cannot be connected" in str(exc)


def store_error(exc: RedisError | RedisClusterException) -> StoreError:
    """The bridge's error for redis-py's, keeping its message and its class's name."""
    name = type(exc).__name__
    detail = str(exc).splitlines()[0][:200] if str(exc) else name
    if isinstance(exc, MasterNotFoundError):  # its text is the client's long repr
        detail = "the Sentinels name no primary (unreachable, or not monitoring that name)"
    passes = (RedisConnectionError, RedisTimeoutError, *_PASSING, *_REPLACED)
    if isinstance(exc, passes) or _unreachable(exc):
        return StoreUnavailable(detail, cause_name=name)
    if refuses_writes(exc):
        return StoreRefusesWrites(detail, cause_name=name)
    return StoreError(detail, cause_name=name)


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
C = TypeVar("C", bound=type)


def _mapped(method: F) -> F:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except (RedisError, RedisClusterException) as exc:
            raise store_error(exc) from exc

    return call  # type: ignore[return-value]


def translated(cls: C) -> C:
    """Wrap every public coroutine method of a store class (the class decorator)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _mapped(member))
    return cls
