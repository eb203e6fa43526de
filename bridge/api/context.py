"""What every admin API operation shares: the context, a call's input and answer, and
the paging and enum parameters. A leaf: handler modules import it, it imports none of
them.

An operation takes a Call and returns an Answer (or raises ApiError). api/server.py
serves each over HTTP; the console calls the same operations in-process, so both have
exactly the same semantics and errors."""

from __future__ import annotations

import enum
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from bridge.api.error_shape import ApiError
from bridge.api.models import decode_cursor, encode_cursor
from bridge.api.scope import Scope
from bridge.clock import Clock
from bridge.delivery.targets import TargetPolicy
from bridge.metrics import Metrics
from bridge.outage import OutageLog
from bridge.sealing import PREFIX as SEALED_PREFIX
from bridge.sealing import SealError
from bridge.sources_live import LiveSources
from bridge.store.deliveries import DeliveryStore
from bridge.store.redis import RedisStore
from bridge.store.sessions import SessionStore


@dataclass(frozen=True)
class ApiContext:
    store: RedisStore
    clock: Clock
    metrics: Metrics
    source_kinds: Mapping[str, tuple[str, ...]]  # source name → the kinds it polls
    tokens: tuple[str, ...]
    max_body_bytes: int
    read_tokens: tuple[str, ...] = ()  # may read events and the pull feed, nothing else
    on_registered: Callable[[], None] = lambda: None
    deliveries: DeliveryStore | None = None
    allow_private_targets: bool = False
    allowed_targets: tuple[str, ...] = ()
    rotation_grace: float = 86400.0
    retention: float = 7 * 86400.0
    on_delivery_work: Callable[[], None] = lambda: None
    # What this process needs beyond Redis answering now (loops running and the like)
    readiness: Callable[[], dict[str, Any]] = dict
    source_rates: Mapping[str, float] = field(default_factory=dict)  # rate_limit per source
    outage: OutageLog = field(default_factory=OutageLog)  # the process's record of Redis
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For names the client
    sources: LiveSources | None = None  # every source, and those defined through the API
    # One authenticated request to a source: does it accept the credentials?
    check_source: Callable[[str], Awaitable[dict[str, Any]]] | None = None

    @functools.cached_property
    def sessions(self) -> SessionStore:
        """The console's sessions, on the store's connection."""
        return SessionStore(self.store)

    @property
    def targets(self) -> TargetPolicy:
        return TargetPolicy.build(
            allow_private=self.allow_private_targets, allowed_targets=self.allowed_targets
        )


@dataclass(frozen=True)
class Call:
    """An operation's input, however it came: path parameters, query, and the body,
    read when the operation asks for it (so a 404 for what the path names comes before
    a 400 for the body, as it always has)."""

    ctx: ApiContext
    params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # the JSON body, when the caller has it parsed already
    read_body: Callable[[], Awaitable[Any]] | None = None  # else: how to read it
    scope: Scope | None = None  # a token scoped to tenants: what it may see (scope.py)

    async def json(self) -> Any:
        return self.body if self.read_body is None else await self.read_body()


@dataclass(frozen=True)
class Answer:
    body: Any  # JSON-able; None with 204
    status: int = 200


Operation = Callable[[Call], Awaitable[Answer]]
E = TypeVar("E", bound=enum.StrEnum)
CTX: web.AppKey[ApiContext] = web.AppKey("ctx", ApiContext)
MAX_PAGE = 500


def delivery_store(ctx: ApiContext) -> DeliveryStore:
    store = ctx.deliveries
    if store is None:
        raise ApiError(404, "not_found", "delivery is not configured on this process")
    return store


CURSOR_KIND = "list cursor"


def page_of(call: Call) -> tuple[tuple[int, str] | None, int]:
    """A list call's cursor and limit; a scoped token's cursor comes sealed
    (next_cursor_of), so it never shows where another tenant's objects are."""
    raw = call.query.get("cursor") or ""
    if raw.startswith(SEALED_PREFIX):
        try:
            raw = call.ctx.store.sealer.open(raw, CURSOR_KIND)
        except SealError:
            field = [{"name": "cursor", "description": "a next_cursor"}]
            raise ApiError(
                400, "invalid_cursor", "cursor is not one this API returned", field
            ) from None
        return page_params({**call.query, "cursor": raw})
    return page_params(call.query)


def next_cursor_of(call: Call, nxt: tuple[int, str] | None) -> str | None:
    """The next page's cursor as handed out: for a scoped token, sealed (it may point
    past another tenant's object, whose id and time it must not learn)."""
    text = encode_cursor(nxt)
    sealer = call.ctx.store.sealer
    if text is None or call.scope is None or not sealer.sealing:
        return text
    return sealer.seal(text, CURSOR_KIND)


def page_params(q: Mapping[str, str]) -> tuple[tuple[int, str] | None, int]:
    try:
        cursor = decode_cursor(q.get("cursor"))
    except ValueError as exc:
        raise ApiError(
            400, "invalid_cursor", str(exc), [{"name": "cursor", "description": str(exc)}]
        ) from None
    raw = q.get("limit", "50")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(
            400,
            "invalid_limit",
            f"limit must be a whole number from 1 to {MAX_PAGE}",
            [{"name": "limit", "description": f"a whole number from 1 to {MAX_PAGE}"}],
        )
    return cursor, int(raw)


def enum_param(value: str | None, enum: type[E], name: str) -> E | None:
    if not value:
        return None
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise ApiError(
            400,
            f"invalid_{name}",
            f"unknown {name} {value!r}",
            [{"name": name, "description": f"one of: {allowed}"}],
        ) from None
