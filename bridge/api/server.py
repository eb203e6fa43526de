"""The admin HTTP API: one application, every route registered here.

Handler modules import the shared context (api/context.py), never this module, so
imports run one way: here → handlers → context.
"""

from __future__ import annotations

from aiohttp import web

from bridge.api import (
    delivery_log,
    event_log,
    feed,
    probes,
    status,
    subscriptions,
    watch_batch,
    watches,
)
from bridge.api.auth import BRAKE, PROXIES, FailureBrake, auth_middleware, no_store
from bridge.api.context import CTX, ApiContext
from bridge.api.error_shape import OUTAGE, error_middleware
from bridge.api.openapi import openapi
from bridge.delivery.targets import parse_network
from bridge.ui import console

PUBLIC_PATHS = ("/livez", "/healthz", "/readyz", "/metrics", "/openapi.json")


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
    r.add_post("/v1/watches", watches.create_watch)
    r.add_post("/v1/watches/batch", watch_batch.create_watches)
    r.add_get("/v1/watches", watches.list_watches)
    r.add_get("/v1/watches/{id}", watches.get_watch)
    r.add_delete("/v1/watches/{id}", watches.delete_watch)
    r.add_get("/v1/events", event_log.list_events)
    r.add_get("/v1/event-types", event_log.list_event_types)
    r.add_get("/v1/events/stream", feed.stream)  # before /v1/events/{id}: not an event id
    r.add_get("/v1/events/{id}", event_log.get_event)
    r.add_post("/v1/events/{id}/replay", delivery_log.replay_event)
    r.add_get("/v1/status", status.status)
    r.add_post("/v1/subscriptions", subscriptions.create_subscription)
    r.add_get("/v1/subscriptions", subscriptions.list_subscriptions)
    r.add_get("/v1/subscriptions/{id}", subscriptions.get_subscription)
    r.add_patch("/v1/subscriptions/{id}", subscriptions.patch_subscription)
    r.add_delete("/v1/subscriptions/{id}", subscriptions.delete_subscription)
    r.add_post("/v1/subscriptions/{id}/rotate-secret", subscriptions.rotate_secret)
    r.add_post("/v1/subscriptions/{id}/test", subscriptions.test_subscription)
    r.add_post("/v1/subscriptions/{id}/recover", subscriptions.recover)
    r.add_get("/v1/deliveries", delivery_log.list_deliveries)
    r.add_get("/v1/deliveries/{id}", delivery_log.get_delivery)
    r.add_post("/v1/deliveries/{id}/retry", delivery_log.retry_delivery)
    console.add_routes(app)
    return app


__all__ = ["PUBLIC_PATHS", "ApiContext", "build_api"]
