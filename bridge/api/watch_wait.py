"""`GET /v1/watches/{id}?wait=S`: the watch once its state changes (a job that ends),
or as it is after S seconds; at once when it has ended already. What `import-bridge
wait` and `watch add --wait` block on, instead of asking again and again."""

from __future__ import annotations

import time

from aiohttp import web

from bridge.api import feed, watches
from bridge.api.auth import SCOPE, still_valid
from bridge.api.context import CTX, Call
from bridge.api.error_shape import ApiError
from bridge.api.models import watch_view
from bridge.api.scope import allows


async def get_watch(request: web.Request) -> web.Response:
    """One watch; with `wait`, a long poll on its state."""
    if "wait" not in request.query:
        call = Call(request.app[CTX], request.match_info, request.query, scope=request.get(SCOPE))
        answer = await watches.get_watch(call)
        return web.json_response(answer.body, status=answer.status)
    wait = feed.parse_wait(request.query.get("wait"))
    store = request.app[CTX].store
    watch_id = request.match_info["id"]
    watch = await store.get_watch(watch_id)
    if watch is None or not allows(request.get(SCOPE), watch.source):
        raise ApiError(404, "watch_not_found", "no watch with that id")
    began = watch.state
    deadline = time.monotonic() + wait
    stopping = request.app[feed.STOPPING]
    if wait > 0 and began.value == "watching":
        with feed.waiting_slot(request, watches=True):
            while time.monotonic() < deadline and not stopping.is_set():
                await feed.pause(stopping, min(feed.LOOK_EVERY_S, deadline - time.monotonic()))
                if not await still_valid(request):
                    raise ApiError(401, "unauthorized", "the token was revoked")
                now = await store.get_watch(watch_id)
                if now is None:
                    raise ApiError(404, "watch_not_found", "the watch was deleted")
                watch = now
                if now.state != began:
                    break
    waiting = await store.waiting_for_budget([watch])
    return web.json_response(watch_view(watch, waiting.get(watch.id)))
