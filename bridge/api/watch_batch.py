"""POST /v1/watches/batch: up to MAX_ITEMS registrations in one request, each answered
on its own (201 new, 200 already watched, 422 with the error), in the order given."""

from __future__ import annotations

from typing import Any

from bridge.api.context import Answer, Call
from bridge.api.error_shape import ApiError
from bridge.api.watches import watch_key_of

MAX_ITEMS = 1000
# A thousand items of the longest job ids fit; a larger body is refused before parsing.
MAX_BATCH_BYTES = 1024 * 1024


async def create_watches(call: Call) -> Answer:
    ctx, body = call.ctx, await call.json()
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or set(body) != {"items"}:
        raise ApiError(
            422,
            "invalid_request",
            'expected {"items": [{source, job_id, kind?}, …]}',
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
    created = 0
    for item in items:
        try:
            key = watch_key_of(ctx, item)
        except ApiError as exc:
            error = {"code": exc.code, "message": exc.message, "fields": exc.fields}
            answers.append({"status": exc.status, "error": error})
            continue
        watch, new = await ctx.store.register(key, ctx.clock.now())
        created += new
        answers.append({"status": 201 if new else 200, "id": watch.id})
    if created:
        ctx.on_registered()
    return Answer({"items": answers})
