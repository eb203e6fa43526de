"""The event log: list (or, with `after`/`wait`, the pull feed), one event, and the
catalogue of event types."""

from __future__ import annotations

from aiohttp import web

from bridge.api import feed
from bridge.api.auth import SCOPE
from bridge.api.context import CTX, Answer, Call, next_cursor_of, page_of
from bridge.api.error_shape import ApiError
from bridge.api.models import event_view
from bridge.api.scope import allows
from bridge.event_types import CATALOGUE, FAMILIES, UnknownEventType, check_pattern


async def list_events(request: web.Request) -> web.Response:
    """The event log, or with `after`/`wait` the pull feed (a long poll)."""
    if feed.is_feed_request(request.query):
        return await feed.long_poll(request)
    answer = await events_page(
        Call(request.app[CTX], query=request.query, scope=request.get(SCOPE))
    )
    return web.json_response(answer.body, status=answer.status)


async def events_page(call: Call) -> Answer:
    ctx, q = call.ctx, call.query
    cursor, limit = page_of(call)
    pattern = q.get("type") or None
    if pattern is not None:
        try:
            check_pattern(pattern)
        except UnknownEventType as exc:
            field = [{"name": "type", "description": str(exc)}]
            raise ApiError(400, "invalid_type", str(exc), field) from None
    events, nxt = await ctx.store.events.list_events(
        watch_id=q.get("watch_id") or None,
        type_=pattern,
        source=q.get("source") or None,
        cursor=cursor,
        limit=limit,
        sources=None if call.scope is None else call.scope.allows,
    )
    return Answer(
        {"items": [event_view(e) for e in events], "next_cursor": next_cursor_of(call, nxt)}
    )


async def list_event_types(call: Call) -> Answer:
    """The known event types, each with a line saying when it is sent."""
    items = [{"type": name, "description": text} for name, text in CATALOGUE.items()]
    return Answer({"items": items, "patterns": ["*", *FAMILIES]})


async def get_event(call: Call) -> Answer:
    event = await call.ctx.store.events.get_event(call.params["id"])
    if event is None or not allows(call.scope, event.data.get("source")):
        raise ApiError(404, "event_not_found", "no event with that id")
    return Answer(event_view(event))
