"""The watch operations: register, list, show and delete."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bridge.api.context import Answer, ApiContext, Call, enum_param, next_cursor_of, page_of
from bridge.api.error_shape import ApiError, validation_fields
from bridge.api.models import WatchCreate, watch_view
from bridge.api.scope import Scope, allows
from bridge.model import Watch, WatchKey, WatchState


async def create_watch(call: Call) -> Answer:
    ctx = call.ctx
    key, metadata = watch_request_of(ctx, await call.json(), call.scope)
    watch, created = await ctx.store.register(key, ctx.clock.now(), metadata)
    if created:
        ctx.on_registered()
    return Answer(watch_view(watch), 201 if created else 200)


def watch_request_of(
    ctx: ApiContext, body: Any, scope: Scope | None = None
) -> tuple[WatchKey, dict[str, str] | None]:
    """What a registration names, checked against the configured sources, and its
    metadata (ApiError)."""
    try:
        req = WatchCreate.model_validate(body)
    except ValidationError as exc:
        raise ApiError(
            422, "invalid_request", "the watch is not valid", validation_fields(exc)
        ) from None
    kinds = ctx.source_kinds.get(req.source) if allows(scope, req.source) else None
    if kinds is None:  # a scoped token hears only of its own sources
        known = ", ".join(sorted(n for n in ctx.source_kinds if allows(scope, n)))
        known = known or "none configured"
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
    return WatchKey(req.source, kind, req.job_id), req.metadata or None


async def list_watches(call: Call) -> Answer:
    store, q = call.ctx.store, call.query
    state = enum_param(q.get("state"), WatchState, "state")
    cursor, limit = page_of(call)
    source, kind = q.get("source") or None, q.get("kind") or None
    scope = call.scope
    if "job_id" in q:
        found = await _by_job(call.ctx, source, kind, q["job_id"], state, scope)
        watches, nxt = [w for w in found if allows(scope, w.source)], None
    else:
        watches, nxt = await store.list_watches(
            state=state, source=source, kind=kind, cursor=cursor, limit=limit,
            sources=None if scope is None else scope.allows,
        )  # fmt: skip
    waiting = await store.waiting_for_budget(watches)
    return Answer(
        {
            "items": [watch_view(w, waiting.get(w.id)) for w in watches],
            "next_cursor": next_cursor_of(call, nxt),
        }
    )


async def _by_job(
    ctx: ApiContext,
    source: str | None,
    kind: str | None,
    job_id: str,
    state: WatchState | None,
    scope: Scope | None = None,
) -> list[Watch]:
    """The watches of one upstream job: one a kind (each of the source's kinds unless
    `kind` names one)."""
    if source is None or not job_id:
        name, why = ("job_id", "a job id") if source else ("source", "the job's source")
        raise ApiError(
            400, "invalid_request", "job_id needs source", [{"name": name, "description": why}]
        )
    kinds = [kind] if kind else ctx.source_kinds.get(source)
    if not allows(scope, source):  # as for a source that does not exist
        kinds = None
    if kinds is None:  # a source no longer configured is still found with its kind
        raise ApiError(
            422,
            "unknown_source",
            f"no source named {source!r}",
            [{"name": "source", "description": "a configured source, or name the kind"}],
        )
    found = [await ctx.store.find_watch(WatchKey(source, k, job_id)) for k in kinds]
    return [w for w in found if w is not None and (state is None or w.state == state)]


async def get_watch(call: Call) -> Answer:
    store = call.ctx.store
    watch = await store.get_watch(call.params["id"])
    if watch is None or not allows(call.scope, watch.source):
        raise ApiError(404, "watch_not_found", "no watch with that id")
    waiting = await store.waiting_for_budget([watch])
    return Answer(watch_view(watch, waiting.get(watch.id)))


async def delete_watch(call: Call) -> Answer:
    ctx = call.ctx
    watch = await ctx.store.get_watch(call.params["id"])
    if watch is None or not allows(call.scope, watch.source):
        raise ApiError(404, "watch_not_found", "no watch with that id")
    if not await ctx.store.delete_watch(watch, ctx.retention):
        raise ApiError(404, "watch_not_found", "no watch with that id")
    return Answer(None, 204)
