"""The admin HTTP API: one application, every route registered here.

Operation modules import the shared context (api/context.py), never this module, so
imports run one way: here → operations → context. Each operation is served over HTTP
by `http` below; the console (a sub-application at /ui) calls the same operations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bridge.api import (
    delivery_log,
    event_log,
    feed,
    probes,
    sources,
    status,
    subscriptions,
    tokens,
    watch_batch,
    watch_wait,
    watches,
)
from bridge.api.auth import BRAKE, PROXIES, SCOPE, FailureBrake, auth_middleware, no_store
from bridge.api.context import CTX, ApiContext, Call, Operation
from bridge.api.error_shape import OUTAGE, error_middleware, read_json
from bridge.api.openapi import openapi
from bridge.delivery.targets import parse_network
from bridge.ui import console

PUBLIC_PATHS = ("/livez", "/healthz", "/readyz", "/metrics", "/openapi.json")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http(op: Operation, body_bytes: Callable[[ApiContext], int] | None = None) -> Handler:
    """An operation served over HTTP: the path, query and (when body_bytes says how
    large it may be) the JSON body in; its answer out as JSON."""

    async def handler(request: web.Request) -> web.StreamResponse:
        ctx = request.app[CTX]

        async def read_body() -> Any:
            return await read_json(request, body_bytes(ctx)) if body_bytes else None

        call = Call(ctx, request.match_info, request.query, read_body=read_body,
                    scope=request.get(SCOPE))  # fmt: skip
        answer = await op(call)
        if answer.status == 204:
            return web.Response(status=204)
        return web.json_response(answer.body, status=answer.status)

    return handler


def _body(ctx: ApiContext) -> int:
    return ctx.max_body_bytes


def _batch_body(ctx: ApiContext) -> int:
    return max(ctx.max_body_bytes, watch_batch.MAX_BATCH_BYTES)


def build_api(ctx: ApiContext) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=ctx.max_body_bytes
    )
    app[CTX] = ctx
    app[OUTAGE] = ctx.outage
    app[BRAKE] = FailureBrake()
    app[PROXIES] = tuple(n for e in ctx.trusted_proxies if (n := parse_network(e)) is not None)
    app.on_response_prepare.append(no_store)
    feed.install(app)
    r = app.router
    r.add_get("/livez", probes.livez)
    r.add_get("/healthz", probes.livez)
    r.add_get("/readyz", probes.readyz)
    r.add_get("/metrics", probes.metrics)
    r.add_get("/openapi.json", openapi)
    r.add_post("/v1/watches", http(watches.create_watch, _body))
    r.add_post("/v1/watches/batch", http(watch_batch.create_watches, _batch_body))
    r.add_get("/v1/watches", http(watches.list_watches))
    r.add_get("/v1/watches/{id}", watch_wait.get_watch)  # with ?wait=S a long poll
    r.add_delete("/v1/watches/{id}", http(watches.delete_watch))
    r.add_get("/v1/events", event_log.list_events)  # also the pull feed
    r.add_get("/v1/event-types", http(event_log.list_event_types))
    r.add_get("/v1/events/stream", feed.stream)  # before /v1/events/{id}: not an event id
    r.add_get("/v1/events/{id}", http(event_log.get_event))
    r.add_post("/v1/events/{id}/replay", http(delivery_log.replay_event))
    r.add_get("/v1/status", http(status.status))
    r.add_post("/v1/tokens", http(tokens.create_token, _body))
    r.add_get("/v1/tokens", http(tokens.list_tokens))
    r.add_delete("/v1/tokens/{id}", http(tokens.delete_token))
    r.add_get("/v1/sources", http(sources.list_sources))
    r.add_post("/v1/sources", http(sources.create_source, _body))
    r.add_get("/v1/sources/{name}", http(sources.get_source))
    r.add_patch("/v1/sources/{name}", http(sources.patch_source, _body))
    r.add_delete("/v1/sources/{name}", http(sources.delete_source))
    r.add_post("/v1/sources/{name}/check", http(sources.check_source))
    r.add_post("/v1/subscriptions", http(subscriptions.create_subscription, _body))
    r.add_get("/v1/subscriptions", http(subscriptions.list_subscriptions))
    r.add_get("/v1/subscriptions/{id}", http(subscriptions.get_subscription))
    r.add_patch("/v1/subscriptions/{id}", http(subscriptions.patch_subscription, _body))
    r.add_delete("/v1/subscriptions/{id}", http(subscriptions.delete_subscription))
    r.add_post("/v1/subscriptions/{id}/rotate-secret", http(subscriptions.rotate_secret))
    r.add_post("/v1/subscriptions/{id}/test", http(subscriptions.test_subscription))
    r.add_post("/v1/subscriptions/{id}/recover", http(subscriptions.recover))
    r.add_get("/v1/deliveries", http(delivery_log.list_deliveries))
    r.add_get("/v1/deliveries/{id}", http(delivery_log.get_delivery))
    r.add_post("/v1/deliveries/{id}/retry", http(delivery_log.retry_delivery))
    app.add_subapp("/ui", console.build_console(ctx))
    return app


__all__ = ["PUBLIC_PATHS", "ApiContext", "build_api"]
