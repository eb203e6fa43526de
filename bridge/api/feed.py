"""The pull feed, for receivers that cannot accept inbound HTTP (DESIGN §4).

`GET /v1/events?after=CURSOR&wait=S` long-polls; `GET /v1/events/stream` is Server-Sent
Events, resumable with Last-Event-ID. Both read the outbox stream: its ids are
assigned by Redis in order and never reused, so a cursor (a stream id) misses nothing
and repeats nothing, however many replicas write events. Events stay readable for
`poll.retention`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web

from bridge.api.auth import PRINCIPAL, SCOPE, still_valid
from bridge.api.context import CTX, page_params
from bridge.api.error_shape import ApiError
from bridge.api.models import event_view
from bridge.errors import StoreOutage
from bridge.model import Event

# A cursor before every kept event.
FEED_START = "0-0"
MAX_WAIT_S = 60.0
# How often a waiting request looks again: well inside the 1 s a consumer may wait.
LOOK_EVERY_S = 0.2
HEARTBEAT_S = 15.0
_CURSOR = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_WAIT = re.compile(r"[0-9]{1,2}(\.[0-9]{1,3})?")
# Clients waiting (long polls and streams) per process; more get 503 and come back.
MAX_WAITING = 200
# A stream whose reader stops reading is ended after this long.
WRITE_TIMEOUT_S = 30.0
WAITING: web.AppKey[list[int]] = web.AppKey("feed_waiting", list)
WAITING_PER_TOKEN: web.AppKey[dict[str, int]] = web.AppKey("feed_waiting_per_token", dict)
# Watch waits (GET /v1/watches/{id}?wait=) have places of their own: pipelines waiting
# on their jobs never lock the feed's consumers out, nor the other way round.
WATCH_WAITING: web.AppKey[list[int]] = web.AppKey("watch_waiting", list)
WATCH_WAITING_PER_TOKEN: web.AppKey[dict[str, int]] = web.AppKey("watch_waiting_per", dict)
STOPPING: web.AppKey[asyncio.Event] = web.AppKey("feed_stopping", asyncio.Event)


def install(app: web.Application) -> None:
    """The feed's state on the app: waiting places, and the stop that ends streams."""
    app[STOPPING] = asyncio.Event()
    app[WAITING] = [0]
    app[WAITING_PER_TOKEN] = {}
    app[WATCH_WAITING] = [0]
    app[WATCH_WAITING_PER_TOKEN] = {}
    app.on_shutdown.append(_stop_streams)


async def _stop_streams(app: web.Application) -> None:
    app[STOPPING].set()


def is_feed_request(query: Any) -> bool:
    return "after" in query or "wait" in query


def parse_cursor(raw: str | None, name: str) -> str:
    if raw is None or raw == "":
        return FEED_START
    if not _CURSOR.fullmatch(raw) or any(int(part) >= 2**64 - 1 for part in raw.split("-")):
        problem = "a cursor from next_cursor (or an SSE id), e.g. 1764064800000-0"
        raise ApiError(400, "invalid_cursor", f"{name} is not a cursor this API handed out",
                       [{"name": name, "description": problem}])  # fmt: skip
    return raw


def parse_wait(raw: str | None) -> float:
    if raw is None or raw == "":
        return 0.0
    if not _WAIT.fullmatch(raw) or float(raw) > MAX_WAIT_S:
        problem = f"seconds from 0 to {MAX_WAIT_S:g}"
        raise ApiError(400, "invalid_wait", f"wait must be {problem}",
                       [{"name": "wait", "description": problem}])  # fmt: skip
    return float(raw)


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Wait a moment before looking again; at once when the server stops."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), max(0.0, seconds))


async def _next(
    request: web.Request, after: str, limit: int
) -> tuple[list[tuple[str, Event]], str]:
    """Events after the cursor, and the cursor to go on from: past the rows read, also
    those whose event has expired (so a run of them never stalls a consumer), and, for
    a token scoped to tenants, past the other tenants' events (it never sees them)."""
    items, scanned = await request.app[CTX].store.events.feed(after, limit)
    scope = request.get(SCOPE)
    if scope is not None:
        items = [(c, e) for c, e in items if scope.allows(e.data.get("source"))]
    return items, scanned


@contextlib.contextmanager
def waiting_slot(request: web.Request, *, watches: bool = False) -> Iterator[None]:
    """A place among the waiting clients: MAX_WAITING per process, and at most a
    quarter of them for one token, so one consumer cannot lock the others out; watch
    waits count apart from the feed's."""
    count = request.app[WATCH_WAITING if watches else WAITING]
    token = request[PRINCIPAL]  # the token that matched, however its header was spelt
    per_token = request.app[WATCH_WAITING_PER_TOKEN if watches else WAITING_PER_TOKEN]
    if count[0] >= MAX_WAITING or per_token.get(token, 0) >= MAX_WAITING // 4:
        raise ApiError(503, "too_many_waiting", "too many clients are waiting; try again soon")
    count[0] += 1
    per_token[token] = per_token.get(token, 0) + 1
    try:
        yield
    finally:
        count[0] -= 1
        per_token[token] -= 1
        if not per_token[token]:
            del per_token[token]


async def long_poll(request: web.Request) -> web.Response:
    """Events after the cursor; with wait, returns as soon as one exists (or after
    `wait` seconds with none). next_cursor is always set, so a consumer simply loops."""
    q = request.query
    _, limit = page_params({"limit": q.get("limit", "50")})
    after = parse_cursor(q.get("after"), "after")
    wait = parse_wait(q.get("wait"))
    deadline = time.monotonic() + wait
    stopping = request.app[STOPPING]
    items, after = await _next(request, after, limit)
    if not items and wait > 0:
        with waiting_slot(request):
            while not items and time.monotonic() < deadline and not stopping.is_set():
                await pause(stopping, min(LOOK_EVERY_S, deadline - time.monotonic()))
                if not await still_valid(request):
                    raise ApiError(401, "unauthorized", "the token was revoked")
                items, after = await _next(request, after, limit)
    return web.json_response({"items": [event_view(e) for _, e in items], "next_cursor": after})


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: `id:` the cursor, `event:` the type, `data:` the event JSON;
    from Last-Event-ID (or `after`), else from the oldest kept event; a comment line
    every HEARTBEAT_S keeps proxies from closing an idle stream."""
    header = request.headers.get("Last-Event-ID")
    after = parse_cursor(header if header else request.query.get("after"), "Last-Event-ID")
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    with waiting_slot(request):
        await resp.prepare(request)
        stopping = request.app[STOPPING]
        quiet_since = time.monotonic()
        try:
            while not stopping.is_set():
                if not await still_valid(request):
                    break  # revoked: the stream ends here
                items, scanned = await _next(request, after, 100)
                for cursor, event in items:
                    data = orjson.dumps(event_view(event)).decode()
                    line = f"id: {cursor}\nevent: {event.type}\ndata: {data}\n\n"
                    await asyncio.wait_for(resp.write(line.encode()), WRITE_TIMEOUT_S)
                after = scanned
                if items:
                    quiet_since = time.monotonic()
                    continue
                if time.monotonic() - quiet_since >= HEARTBEAT_S:
                    await asyncio.wait_for(resp.write(b": keepalive\n\n"), WRITE_TIMEOUT_S)
                    quiet_since = time.monotonic()
                await pause(stopping, LOOK_EVERY_S)
        except (ConnectionError, TimeoutError):
            pass  # the consumer went away or stopped reading; it resumes with Last-Event-ID
        except StoreOutage:
            pass  # the stream ends; the consumer resumes with Last-Event-ID
    return resp
