"""The admin HTTP API: watches, events, health and metrics."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from bridge.api.auth import (
    BRAKE,
    PRINCIPAL,
    PROXIES,
    FailureBrake,
    authenticate,
    bearer_of,
    guarded,
)
from bridge.api.errors import OUTAGE, ApiError, error_middleware, read_json, validation_fields
from bridge.api.models import (
    WatchCreate,
    decode_cursor,
    encode_cursor,
    event_view,
    watch_view,
)
from bridge.clock import Clock
from bridge.delivery.targets import TargetPolicy, parse_network
from bridge.event_types import CATALOGUE, FAMILIES, UnknownEventType, check_pattern
from bridge.metrics import Metrics
from bridge.model import WatchKey, WatchState
from bridge.outage import OutageLog
from bridge.store.deliveries import DeliveryStore
from bridge.store.redis import RedisStore


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

    @property
    def targets(self) -> TargetPolicy:
        return TargetPolicy.build(
            allow_private=self.allow_private_targets, allowed_targets=self.allowed_targets
        )


E = TypeVar("E", bound=enum.StrEnum)
CTX: web.AppKey[ApiContext] = web.AppKey("ctx", ApiContext)
PUBLIC_PATHS = ("/livez", "/healthz", "/readyz", "/metrics", "/openapi.json")
MAX_PAGE = 500
READY_WITHIN_S = 1.5  # /readyz answers 503 this soon when Redis does not answer


def build_api(ctx: ApiContext) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, _auth_middleware], client_max_size=ctx.max_body_bytes
    )
    app[CTX] = ctx
    app[OUTAGE] = ctx.outage
    app[BRAKE] = FailureBrake()
    app[PROXIES] = tuple(n for e in ctx.trusted_proxies if (n := parse_network(e)) is not None)
    app.on_response_prepare.append(_no_store)
    app.router.add_get("/livez", livez)
    app.router.add_get("/healthz", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/watches", create_watch)
    from bridge.api.batch import create_watches

    app.router.add_post("/v1/watches/batch", create_watches)
    app.router.add_get("/v1/watches", list_watches)
    app.router.add_get("/v1/watches/{id}", get_watch)
    app.router.add_delete("/v1/watches/{id}", delete_watch)
    from bridge.api import deliveries, feed, subscriptions

    app.router.add_get("/v1/events", list_events)
    app.router.add_get("/v1/event-types", list_event_types)
    feed.add_routes(app)
    app.router.add_get("/v1/events/{id}", get_event)
    from bridge.api.openapi import openapi
    from bridge.api.status import status

    app.router.add_get("/v1/status", status)
    subscriptions.add_routes(app)
    deliveries.add_routes(app)
    from bridge.ui import console

    console.add_routes(app)
    app.router.add_get("/openapi.json", openapi)
    return app


@web.middleware
async def _auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/v1"):
        ctx = request.app[CTX]
        header = request.headers.get("Authorization")
        principal, read_only = guarded(
            request,
            lambda: authenticate(header, ctx.tokens, ctx.read_tokens),
            presented=bearer_of(header) is not None,
        )
        if read_only and not _is_event_read(request):
            raise ApiError(403, "forbidden", "a read token may only read events")
        request[PRINCIPAL] = principal
    return await handler(request)  # type: ignore[no-any-return]


async def _no_store(request: web.Request, response: web.StreamResponse) -> None:
    """What a token or a session reads is nobody else's: no cache keeps it (a new
    subscription's secret, a rotated one, any answer under /v1 or /ui)."""
    if request.path.startswith(("/v1", "/ui")):
        response.headers.setdefault("Cache-Control", "no-store")


def _is_event_read(request: web.Request) -> bool:
    """The event log, one event, the long poll, the SSE stream (GETs under /v1/events)
    and the catalogue of event types."""
    path = request.path.rstrip("/")
    return request.method in ("GET", "HEAD") and (
        path in ("/v1/events", "/v1/event-types")
        or (path.startswith("/v1/events/") and path.count("/") == 3)
    )


# ----------------------------------------------------------------- health
async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Whether this process can do its work: Redis answers and its loops run. Upstream
    credentials are not part of it (see /v1/status): one bad key must not take every
    replica out of its Service."""
    ctx = request.app[CTX]
    checks: dict[str, Any] = {}
    try:  # a silent Redis is told within READY_WITHIN_S, not after a command's timeout
        async with asyncio.timeout(READY_WITHIN_S):
            await ctx.store.ping()
    except Exception as exc:  # any failure to reach Redis means not ready
        checks["redis"] = f"unreachable: {type(exc).__name__}"
        return web.json_response({"status": "unavailable", "checks": checks}, status=503)
    checks.update(ctx.readiness())
    checks["redis"] = "ok"
    ready = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[CTX].metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


# ---------------------------------------------------------------- watches
async def create_watch(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    key = watch_key_of(ctx, await read_json(request, ctx.max_body_bytes))
    watch, created = await ctx.store.register(key, ctx.clock.now())
    if created:
        ctx.on_registered()
    return web.json_response(watch_view(watch), status=201 if created else 200)


def watch_key_of(ctx: ApiContext, body: Any) -> WatchKey:
    """What a registration names, checked against the configured sources (ApiError)."""
    try:
        req = WatchCreate.model_validate(body)
    except ValidationError as exc:
        raise ApiError(
            422, "invalid_request", "the watch is not valid", validation_fields(exc)
        ) from None
    kinds = ctx.source_kinds.get(req.source)
    if kinds is None:
        known = ", ".join(sorted(ctx.source_kinds)) or "none configured"
        raise ApiError(
            422,
            "unknown_source",
            f"no source named {req.source!r}",
            [{"name": "source", "description": f"configured sources: {known}"}],
        )
    kind = req.kind or kinds[0]
    if kind not in kinds:
        raise ApiError(
            422,
            "invalid_kind",
            f"kind {kind!r} is not polled for this source",
            [{"name": "kind", "description": f"one of: {', '.join(kinds)}"}],
        )
    return WatchKey(req.source, kind, req.job_id)


async def list_watches(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    q = request.query
    state = enum_param(q.get("state"), WatchState, "state")
    cursor, limit = page_params(q)
    watches, nxt = await ctx.store.list_watches(
        state=state, source=q.get("source") or None, cursor=cursor, limit=limit
    )
    waiting = await ctx.store.waiting_for_budget(watches)
    return web.json_response(
        {
            "items": [watch_view(w, waiting.get(w.id)) for w in watches],
            "next_cursor": encode_cursor(nxt),
        }
    )


async def get_watch(request: web.Request) -> web.Response:
    store = request.app[CTX].store
    watch = await store.get_watch(request.match_info["id"])
    if watch is None:
        raise ApiError(404, "watch_not_found", "no watch with that id")
    waiting = await store.waiting_for_budget([watch])
    return web.json_response(watch_view(watch, waiting.get(watch.id)))


async def delete_watch(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    watch = await ctx.store.get_watch(request.match_info["id"])
    if watch is None or not await ctx.store.delete_watch(watch, ctx.retention):
        raise ApiError(404, "watch_not_found", "no watch with that id")
    return web.Response(status=204)


# ----------------------------------------------------------------- events
async def list_events(request: web.Request) -> web.Response:
    from bridge.api import feed

    if feed.is_feed_request(request.query):
        return await feed.long_poll(request)
    ctx = request.app[CTX]
    q = request.query
    cursor, limit = page_params(q)
    pattern = q.get("type") or None
    if pattern is not None:
        try:
            check_pattern(pattern)
        except UnknownEventType as exc:
            field = [{"name": "type", "description": str(exc)}]
            raise ApiError(400, "invalid_type", str(exc), field) from None
    events, nxt = await ctx.store.list_events(
        watch_id=q.get("watch_id") or None, type_=pattern, cursor=cursor, limit=limit
    )
    return web.json_response(
        {"items": [event_view(e) for e in events], "next_cursor": encode_cursor(nxt)}
    )


async def list_event_types(request: web.Request) -> web.Response:
    """The known event types, each with a line saying when it is sent."""
    items = [{"type": name, "description": text} for name, text in CATALOGUE.items()]
    return web.json_response({"items": items, "patterns": ["*", *FAMILIES]})


async def get_event(request: web.Request) -> web.Response:
    event = await request.app[CTX].store.get_event(request.match_info["id"])
    if event is None:
        raise ApiError(404, "event_not_found", "no event with that id")
    return web.json_response(event_view(event))


# ----------------------------------------------------------------- params
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
