"""POST /v1/watches/batch: up to MAX_ITEMS registrations in one request, each answered
on its own (201 new, 200 already watched, 422 with the error), in the order given."""

from __future__ import annotations

from typing import Any

from bridge.api.context import Answer, Call
from bridge.api.error_shape import ApiError
from bridge.api.watches import watch_request_of
from bridge.model import WatchKey

MAX_ITEMS = 1000
# A thousand items of the longest job ids and the most metadata fit (about 1.6 KB each
# as JSON); a larger body is refused before parsing.
MAX_BATCH_BYTES = 3 * 1024 * 1024


async def create_watches(call: Call) -> Answer:
    ctx, body = call.ctx, await call.json()
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or set(body) != {"items"}:
        raise ApiError(
            422,
            "invalid_request",
            'expected {"items": [{source, job_id, kind?, metadata?}, …]}',
            [{"name": "items", "description": "a list of watches to register"}],
        )
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ApiError(
            422,
            "invalid_request",
            f"from 1 to {MAX_ITEMS} items per request",
            [{"name": "items", "description": f"{len(items)} given"}],
        )
    answers: list[dict[str, Any]] = []
    valid: list[tuple[int, WatchKey, dict[str, str] | None]] = []
    for item in items:
        try:
            valid.append((len(answers), *watch_request_of(ctx, item, call.scope)))
            answers.append({})
        except ApiError as exc:
            error = {"code": exc.code, "message": exc.message, "fields": exc.fields}
            answers.append({"status": exc.status, "error": error})
    registered = await ctx.store.register_many(
        [key for _, key, _ in valid], ctx.clock.now(), [meta for _, _, meta in valid]
    )
    for (at, _, _), (watch, new) in zip(valid, registered, strict=True):
        answers[at] = {"status": 201 if new else 200, "id": watch.id}
    if any(new for _, new in registered):
        ctx.on_registered()
    return Answer({"items": answers})
