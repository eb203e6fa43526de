"""Admin API: deliveries, their retry, and event replays."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from bridge.api.context import Answer, Call, delivery_store, enum_param, next_cursor_of, page_of
from bridge.api.error_shape import ApiError
from bridge.api.models import iso
from bridge.api.scope import allows, held
from bridge.delivery.deliverer import deliveries_for
from bridge.model import Delivery, DeliveryStatus
from bridge.store.deliveries import delivery_id
from bridge.store.verdicts import Verdict


def delivery_view(d: Delivery, parked: bool = False) -> dict[str, Any]:
    """parked: it waits while its subscription is disabled (no attempt is due: none
    is made until the subscription is enabled again)."""
    return {
        "id": d.id,
        "event_id": d.event_id,
        "subscription_id": d.subscription_id,
        "status": d.status.value,
        "parked": parked,
        "created_at": iso(d.created_at),
        "next_attempt_at": iso(d.next_attempt_at)
        if d.status is not DeliveryStatus.SUCCEEDED and not parked
        else None,
        "attempts": [
            {
                "at": iso(a.at),
                "status": a.status,
                "latency_s": a.latency_s,
                "error": a.error,
                "response_snippet": a.snippet,
            }
            for a in d.attempts
        ],
    }


async def list_deliveries(call: Call) -> Answer:
    q = call.query
    cursor, limit = page_of(call)
    status = enum_param(q.get("status"), DeliveryStatus, "status")
    store = delivery_store(call.ctx)
    held = await _held(call)
    items, nxt = await store.list_deliveries(
        status=status, subscription_id=q.get("subscription_id") or None, cursor=cursor,
        limit=limit, subscriptions=held,
    )  # fmt: skip
    if call.scope is not None:
        items = await _of_scope(call, items)
    parked = await store.parked_among(items)
    views = [delivery_view(d, d.id in parked) for d in items]
    return Answer({"items": views, "next_cursor": next_cursor_of(call, nxt)})


async def _held(call: Call) -> set[str] | None:
    """The subscriptions a scoped token holds (None: every one)."""
    if call.scope is None:
        return None
    subs = await delivery_store(call.ctx).list_subscriptions()
    return {s.id for s in subs if held(call.scope, s)}


async def _delivery(call: Call) -> Delivery:
    """The delivery the path names; 404 also for one to a subscription a scoped token
    does not hold."""
    d = await delivery_store(call.ctx).get_delivery(call.params["id"])
    subs = await _held(call) if d is not None else None
    if d is None or (subs is not None and d.subscription_id not in subs):
        raise ApiError(404, "delivery_not_found", "no delivery with that id")
    if call.scope is not None and not await _of_scope(call, [d]):
        raise ApiError(404, "delivery_not_found", "no delivery with that id")
    return d


async def _of_scope(call: Call, deliveries: list[Delivery]) -> list[Delivery]:
    """Those whose event is of the token's sources (a subscription's sources may have
    changed since it got an event of another's; an expired event proves nothing)."""
    events = await delivery_store(call.ctx).get_events([d.event_id for d in deliveries])
    return [
        d for d, e in zip(deliveries, events, strict=True)
        if e is not None and allows(call.scope, e.data.get("source"))
    ]  # fmt: skip


async def get_delivery(call: Call) -> Answer:
    store = delivery_store(call.ctx)
    d = await _delivery(call)
    return Answer(delivery_view(d, bool(await store.parked_among([d]))))


async def retry_delivery(call: Call) -> Answer:
    ctx = call.ctx
    store = delivery_store(call.ctx)
    d = await _delivery(call)
    verdict = await store.requeue(d, ctx.clock.now())
    if verdict is Verdict.BUSY and d.status is DeliveryStatus.SUCCEEDED:
        raise ApiError(
            409,
            "delivery_succeeded",
            "the delivery already succeeded; to send the event again, replay it "
            "(POST /v1/events/{id}/replay, or events replay)",
        )
    if verdict is Verdict.BUSY:
        raise ApiError(
            409,
            "delivery_not_finished",
            f"the delivery is {d.status.value}: it is still being tried; only failed or "
            "dead deliveries are retried",
        )
    ctx.on_delivery_work()
    return Answer({"id": d.id, "status": "pending"}, 202)


async def replay_event(call: Call) -> Answer:
    """Deliver an event again to every subscription that matches it (same webhook-id)."""
    ctx = call.ctx
    store = delivery_store(call.ctx)
    event = await ctx.store.events.get_event(call.params["id"])
    if event is None or not allows(call.scope, event.data.get("source")):
        raise ApiError(404, "event_not_found", "no event with that id")
    subs = [s for s in await store.list_subscriptions() if held(call.scope, s)]
    only = call.query.get("subscription_id")
    if only:
        subs = [s for s in subs if s.id == only]
    now = ctx.clock.now()
    replay = time.time_ns()
    deliveries = [
        replace(d, id=delivery_id(event.id, d.subscription_id, replay))
        for d in deliveries_for(event, subs, now)
    ]
    await store.add_deliveries(deliveries, now)
    ctx.on_delivery_work()
    return Answer({"event_id": event.id, "delivery_ids": [d.id for d in deliveries]}, 202)
