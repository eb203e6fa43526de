"""The OpenAPI 3.1 document of the admin API, served at /openapi.json.

Request bodies are the JSON schemas of the pydantic models the handlers validate
with, so the document cannot drift from the validation; a test checks that every
route of the app is described here and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from bridge.api.models import WatchBatch, WatchCreate
from bridge.api.sources import SourceCreate, SourcePatch
from bridge.api.subscriptions import SubscriptionCreate, SubscriptionPatch
from bridge.api.tokens import TokenCreate
from bridge.model import DeliveryStatus, WatchState


class ErrorField(BaseModel):
    name: str
    description: str


class Error(BaseModel):
    """Every error of the API has this shape."""

    code: str = Field(description="snake_case, stable: match on it")
    message: str
    fields: list[ErrorField] = Field(default_factory=list)


MODELS: tuple[type[BaseModel], ...] = (
    WatchBatch,
    WatchCreate,
    SubscriptionCreate,
    SubscriptionPatch,
    Error,
)
PAGE: list[tuple[str, str, dict[str, Any]]] = [
    ("cursor", "next_cursor of the previous page", {"type": "string"}),
    ("limit", "items per page", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
]


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    ok: tuple[int, str] = (200, "OK")
    public: bool = False


def _enum(values: type[WatchState] | type[DeliveryStatus]) -> dict[str, Any]:
    return {"type": "string", "enum": [v.value for v in values]}


OPERATIONS = (
    Op("get", "/livez", "Liveness", "health", public=True),
    Op("get", "/healthz", "Liveness (alias of /livez)", "health", public=True),
    Op("get", "/readyz", "Readiness: Redis reachable, this process's loops running", "health",
       public=True),
    Op("get", "/metrics", "Prometheus metrics", "health", public=True),
    Op("get", "/openapi.json", "This document", "health", public=True),
    Op("get", "/v1/status", "Watch counts, source health, queue depths", "status"),
    Op("post", "/v1/tokens", "A token scoped to sources (shown once); config file's tokens "
       "only", "tokens", body=TokenCreate, ok=(201, "Created")),
    Op("get", "/v1/tokens", "The tokens made here, never their values", "tokens"),
    Op("delete", "/v1/tokens/{id}", "Revoke a token, at once on every replica", "tokens",
       ok=(204, "Deleted")),
    Op("get", "/v1/sources", "Every source: the config file's (static) and those defined "
       "here; secrets as **********", "sources"),
    Op("post", "/v1/sources", "Define a source (the keys of a [sources.NAME] table, and "
       "name); every replica polls it within about a second", "sources", body=SourceCreate,
       ok=(201, "Created")),
    Op("get", "/v1/sources/{name}", "One source", "sources"),
    Op("patch", "/v1/sources/{name}", "Change a defined source (409 for the config file's)",
       "sources", body=SourcePatch),
    Op("delete", "/v1/sources/{name}", "Delete a defined source: no longer polled; its "
       "watches are dropped when next due, its events kept", "sources", ok=(204, "Deleted")),
    Op("post", "/v1/sources/{name}/check", "One authenticated request: do the credentials "
       "work? {ok, reason}", "sources"),
    Op("post", "/v1/watches", "Watch a job (200 when already watched)", "watches",
       body=WatchCreate, ok=(201, "Created")),
    Op("post", "/v1/watches/batch",
       "Watch up to 1,000 jobs: per item {status: 201 new, 200 already watched, 422 with "
       "the error; id}, in the order given", "watches", body=WatchBatch, ok=(200, "Answered")),
    Op("get", "/v1/watches", "List watches", "watches",
       query=[("state", "filter", _enum(WatchState)), ("source", "filter", {"type": "string"}),
              ("kind", "filter", {"type": "string"}),
              ("job_id", "the watches of one upstream job (with source; kind: each of the "
               "source's unless named); one page", {"type": "string"}),
              *PAGE]),
    Op("get", "/v1/watches/{id}", "One watch; with wait=S (0-60), once its state changes "
       "(or after S seconds; at once when it has ended)", "watches",
       query=[("wait", "seconds to wait for a change of state",
               {"type": "number", "minimum": 0, "maximum": 60})]),
    Op("delete", "/v1/watches/{id}", "Stop watching", "watches", ok=(204, "Deleted")),
    Op("get", "/v1/events",
       "The event log; with `after` or `wait`, the pull feed: a long poll that returns as "
       "soon as an event exists after the cursor, with next_cursor always set",
       "events",
       query=[("watch_id", "filter", {"type": "string"}),
              ("type", "an event type or pattern (import.*, *)", {"type": "string"}),
              ("source", "only this source's events", {"type": "string"}),
              ("after", "pull feed: events after this cursor (next_cursor; none: the oldest)",
               {"type": "string", "pattern": "^[0-9]{1,20}-[0-9]{1,20}$"}),
              ("wait", "pull feed: seconds to wait for an event (at most 60)",
               {"type": "number", "minimum": 0, "maximum": 60}),
              *PAGE]),
    Op("get", "/v1/events/stream",
       "Server-Sent Events: id = cursor, event = type, data = the event; resumes after "
       "Last-Event-ID", "events",
       query=[("after", "start after this cursor (or the Last-Event-ID header)",
               {"type": "string", "pattern": "^[0-9]{1,20}-[0-9]{1,20}$"})]),
    Op("get", "/v1/events/{id}", "One event", "events"),
    Op("get", "/v1/event-types", "The known event types, each with a one-line description",
       "events"),
    Op("post", "/v1/events/{id}/replay", "Deliver again, same webhook-id", "events",
       query=[("subscription_id", "only to this subscription", {"type": "string"})],
       ok=(202, "Queued")),
    Op("post", "/v1/subscriptions", "Subscribe (the secret is shown only here)",
       "subscriptions", body=SubscriptionCreate, ok=(201, "Created")),
    Op("get", "/v1/subscriptions", "List subscriptions (never their secrets)", "subscriptions",
       query=PAGE),
    Op("get", "/v1/subscriptions/{id}", "One subscription", "subscriptions"),
    Op("patch", "/v1/subscriptions/{id}", "Change a subscription; enable resumes kept events",
       "subscriptions", body=SubscriptionPatch),
    Op("delete", "/v1/subscriptions/{id}", "Unsubscribe", "subscriptions", ok=(204, "Deleted")),
    Op("post", "/v1/subscriptions/{id}/rotate-secret",
       "New secret; the old one keeps signing for the grace period", "subscriptions"),
    Op("post", "/v1/subscriptions/{id}/test", "Send a ping event now", "subscriptions",
       ok=(202, "Queued")),
    Op("post", "/v1/subscriptions/{id}/recover", "Requeue failed and dead deliveries since",
       "subscriptions", query=[("since", "unix seconds", {"type": "number"})]),
    Op("get", "/v1/deliveries", "Deliveries and their attempts", "deliveries",
       query=[("status", "filter", _enum(DeliveryStatus)),
              ("subscription_id", "filter", {"type": "string"}), *PAGE]),
    Op("get", "/v1/deliveries/{id}", "One delivery", "deliveries"),
    Op("post", "/v1/deliveries/{id}/retry", "Requeue a failed or dead delivery", "deliveries",
       ok=(202, "Queued")),
)  # fmt: skip


def _operation(op: Op) -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    out: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "responses": {
            str(op.ok[0]): {"description": op.ok[1]},
            "4XX": {"description": "The request's mistake", "content": error},
        },
    }
    params: list[dict[str, Any]] = []
    for name in ("id", "name"):
        if "{" + name + "}" in op.path:
            schema = {"type": "string"}
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
    params += [
        {"name": name, "in": "query", "description": text, "schema": schema}
        for name, text, schema in op.query
    ]
    if params:
        out["parameters"] = params
    if op.body is not None:
        ref = {"$ref": f"#/components/schemas/{op.body.__name__}"}
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref}}}
    if op.public:
        out["security"] = []
    return out


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    schemas: dict[str, Any] = {}
    for model in MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {"title": "import-job bridge admin API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())
