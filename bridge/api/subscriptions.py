"""Admin API: subscriptions, deliveries and replays."""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge.api.context import Answer, Call, delivery_store, next_cursor_of, page_of
from bridge.api.error_shape import ApiError, validation_fields
from bridge.api.models import Metadata, iso
from bridge.api.scope import Scope, allows, held, holds
from bridge.delivery import signing
from bridge.delivery.formats import Format
from bridge.delivery.headers import check_headers
from bridge.delivery.targets import TargetPolicy, TargetRefused, check_host, check_url
from bridge.event_types import UnknownEventType, check_pattern
from bridge.events import ping_event
from bridge.model import Delivery, DeliveryStatus, Subscription
from bridge.store.deliveries import delivery_id, new_subscription_id
from bridge.store.verdicts import Verdict


class _SubFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=50)
    sources: list[str] | None = Field(default=None, max_length=100)
    format: Format | None = None
    headers: dict[str, str] | None = None
    description: str | None = Field(default=None, max_length=500)
    metadata: Metadata = None  # only watches whose metadata holds these pairs

    @field_validator("event_types")
    @classmethod
    def _patterns(cls, v: list[str] | None) -> list[str] | None:
        for i, p in enumerate(v or []):
            try:
                check_pattern(p)
            except UnknownEventType as exc:
                raise ValueError(f"event_types[{i}]: {exc}") from None
        return v

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        problems = check_headers(v or {})
        if problems:
            raise ValueError("; ".join(problems))
        return v


class SubscriptionCreate(_SubFields):
    url: str = Field(min_length=1, max_length=2000)
    secret: str | None = None
    # v1: HMAC-SHA256 with a whsec_ secret (default); v1a: Ed25519, a whsk_ private key
    # kept here and a whpk_ public key for the receiver
    signature: Literal["v1", "v1a"] | None = None


class SubscriptionPatch(_SubFields):
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    enabled: bool | None = None


def subscription_view(sub: Subscription, parked: int | None = None) -> dict[str, Any]:
    """Never the secrets: they are shown once, at creation and rotation."""
    view: dict[str, Any] = {
        "id": sub.id,
        "url": sub.url,
        "event_types": list(sub.event_types),
        "sources": list(sub.sources),
        "metadata": dict(sub.metadata),
        "format": sub.format,
        "headers": sorted(k for k, _ in sub.headers),  # names only: values may be credentials
        "description": sub.description,
        "enabled": sub.enabled,
        "disabled_reason": sub.disabled_reason,
        "failing_since": iso(sub.failing_since),
        "created_at": iso(sub.created_at),
        "static": sub.static,
        "signature": signing.scheme_of(sub.secrets[0][0]) if sub.secrets else "v1",
        # v1a: the keys receivers verify with (public: shown always)
        "public_keys": [key for s, _ in sub.secrets if (key := signing.public_key(s)) is not None],
    }
    if parked is not None:
        view["parked_deliveries"] = parked
    return view


async def _check_target(url: str, policy: TargetPolicy) -> None:
    try:
        host, port = check_url(url, policy)
        await asyncio.to_thread(check_host, host, port, policy)
    except TargetRefused as exc:
        raise ApiError(
            422,
            "invalid_url",
            f"the URL cannot be a webhook target: {exc}",
            [{"name": "url", "description": str(exc)}],
        ) from None


def _check_secret(secret: str) -> None:
    try:
        signing.check_secret(secret)
    except signing.InvalidSecret as exc:
        raise ApiError(
            422, "invalid_secret", str(exc), [{"name": "secret", "description": str(exc)}]
        ) from None


_ENTRY = re.compile(r"[A-Za-z0-9_*?-]{1,100}")  # a source name, or a pattern of * and ?


def _check_sources(sources: list[str] | None, known: Any, scope: Scope | None = None) -> None:
    """Each entry a configured source, or a pattern (`acme-*`); a scoped token's
    entries within its own sources, and only those it hears of."""
    named = [n for n in known if allows(scope, n)]
    unknown = sorted(
        e for e in sources or []
        if not _ENTRY.fullmatch(e)
        or not holds(scope, [e])
        or ("*" not in e and "?" not in e and e not in known)
    )  # fmt: skip
    if unknown:
        raise ApiError(
            422,
            "unknown_source",
            f"no source named {unknown[0]!r}",
            [{"name": "sources", "description": f"configured: {', '.join(sorted(named))}"}],
        )


async def _parse(call: Call, model: type[BaseModel]) -> Any:
    body = await call.json()
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ApiError(
            422, "invalid_request", "the subscription is not valid", validation_fields(exc)
        ) from None


async def _get_sub(call: Call) -> Subscription:
    """The subscription the path names; 404 also for one a scoped token does not hold
    (one not confined to its sources)."""
    sub = await delivery_store(call.ctx).get_subscription(call.params["id"])
    if sub is None or not held(call.scope, sub):
        raise ApiError(404, "subscription_not_found", "no subscription with that id")
    return sub


# ------------------------------------------------------------- subscriptions
async def create_subscription(call: Call) -> Answer:
    ctx = call.ctx
    store = delivery_store(call.ctx)
    req: SubscriptionCreate = await _parse(call, SubscriptionCreate)
    await _check_target(req.url, ctx.targets)
    _check_sources(req.sources, ctx.source_kinds, call.scope)
    if req.secret is not None:
        _check_secret(req.secret)
    secret = req.secret or signing.new_secret(req.signature or "v1")
    if req.signature and signing.scheme_of(secret) != req.signature:
        problem = "the secret's kind (whsec_: v1, whsk_: v1a) differs from signature"
        raise ApiError(422, "invalid_secret", problem, [{"name": "secret", "description": problem}])
    sub = Subscription(
        id=new_subscription_id(),
        url=req.url,
        secrets=((secret, None),),
        event_types=tuple(req.event_types or ["import.*"]),
        # a scoped token's subscription is confined to its sources
        sources=tuple(req.sources or (call.scope.patterns if call.scope else ())),
        metadata=tuple(sorted((req.metadata or {}).items())),
        format=(req.format or Format.STANDARD).value,
        headers=tuple(sorted((req.headers or {}).items())),
        description=req.description,
        created_at=ctx.clock.now(),
    )
    await store.save_subscription(sub)
    return Answer({**subscription_view(sub), "secret": secret}, 201)


async def list_subscriptions(call: Call) -> Answer:
    """Oldest first, a page at a time (cursor: creation ms and id of the last one seen)."""
    cursor, limit = page_of(call)
    # ordered exactly as the cursor compares (whole ms, then id): none skipped or repeated
    subs = sorted(
        (s for s in await delivery_store(call.ctx).list_subscriptions()
         if held(call.scope, s)),
        key=lambda s: (round(s.created_at * 1000), s.id),
    )  # fmt: skip
    if cursor is not None:
        subs = [s for s in subs if (round(s.created_at * 1000), s.id) > cursor]
    page, more = subs[:limit], len(subs) > limit
    last = page[-1] if page else None
    return Answer(
        {
            "items": [subscription_view(s) for s in page],
            "next_cursor": next_cursor_of(call, (round(last.created_at * 1000), last.id))
            if more and last
            else None,
        }
    )


async def get_subscription(call: Call) -> Answer:
    sub = await _get_sub(call)
    parked = await delivery_store(call.ctx).parked_count(sub.id)
    return Answer(subscription_view(sub, parked))


async def patch_subscription(call: Call) -> Answer:
    ctx = call.ctx
    store = delivery_store(call.ctx)
    sub = await _get_sub(call)
    req: SubscriptionPatch = await _parse(call, SubscriptionPatch)
    if req.url is not None:
        await _check_target(req.url, ctx.targets)
    _check_sources(req.sources, ctx.source_kinds, call.scope)
    if call.scope is not None and req.sources is not None and not req.sources:
        field = [{"name": "sources", "description": "one or more of its sources"}]
        raise ApiError(422, "unknown_source", "a scoped token's subscription names them", field)
    changed = replace(
        sub,
        url=req.url if req.url is not None else sub.url,
        event_types=tuple(req.event_types) if req.event_types is not None else sub.event_types,
        sources=tuple(req.sources) if req.sources is not None else sub.sources,
        metadata=tuple(sorted(req.metadata.items())) if req.metadata is not None else sub.metadata,
        format=req.format.value if req.format is not None else sub.format,
        headers=tuple(sorted(req.headers.items())) if req.headers is not None else sub.headers,
        description=req.description if req.description is not None else sub.description,
    )
    await store.save_subscription(changed)
    if req.enabled is not None:
        await store.set_state(
            sub.id,
            enabled=req.enabled,
            disabled_reason="disabled by the API",
            clear_failing=req.enabled,
        )
        if req.enabled:
            await store.unpark(sub.id, ctx.clock.now())
            ctx.on_delivery_work()
    fresh = await store.get_subscription(sub.id)
    assert fresh is not None
    return Answer(subscription_view(fresh, await store.parked_count(sub.id)))


async def delete_subscription(call: Call) -> Answer:
    now = call.ctx.clock.now()
    await _get_sub(call)  # a scoped token's own, or 404
    if not await delivery_store(call.ctx).delete_subscription(call.params["id"], now):
        raise ApiError(404, "subscription_not_found", "no subscription with that id")
    return Answer(None, 204)


async def rotate_secret(call: Call) -> Answer:
    """A new secret signs from now on; the old ones keep signing for the grace period."""
    ctx = call.ctx
    sub = await _get_sub(call)
    now = ctx.clock.now()
    secret = signing.new_secret(signing.scheme_of(sub.secrets[0][0]) if sub.secrets else "v1")
    until = now + ctx.rotation_grace
    # The current secret signs alongside the new one for the grace; older ones retire now,
    # so the signature header never grows past two.
    live = sub.live_secrets_with_expiry(now)
    previous = ((live[0][0], until),) if live else ()
    await delivery_store(call.ctx).save_subscription(
        replace(sub, secrets=((secret, None), *previous))
    )
    answer: dict[str, Any] = {
        "id": sub.id,
        "secret": secret,
        "previous_secrets_expire_at": iso(until),
    }
    if (key := signing.public_key(secret)) is not None:
        answer["public_key"] = key
    return Answer(answer)


async def test_subscription(call: Call) -> Answer:
    """Send a ping event to this subscription now."""
    ctx = call.ctx
    store = delivery_store(call.ctx)
    sub = await _get_sub(call)
    if not sub.enabled:
        raise ApiError(
            409,
            "subscription_disabled",
            "the subscription is disabled: enable it first (PATCH enabled=true, or sub enable)",
        )
    now = ctx.clock.now()
    event = ping_event(subscription_id=sub.id, now=now)
    await store.save_event(event, now, ctx.retention)
    delivery = Delivery(
        id=delivery_id(event.id, sub.id),
        event_id=event.id,
        subscription_id=sub.id,
        status=DeliveryStatus.PENDING,
        created_at=now,
        detected_at=now,
        next_attempt_at=now,
    )
    await store.add_deliveries([delivery], now)
    ctx.on_delivery_work()
    return Answer({"event_id": event.id, "delivery_id": delivery.id}, 202)


async def recover(call: Call) -> Answer:
    """Requeue a subscription's failed and dead deliveries created since `since`."""
    ctx = call.ctx
    store = delivery_store(call.ctx)
    sub = await _get_sub(call)
    raw = call.query.get("since", "")
    try:
        since = float(raw)
        if not math.isfinite(since) or not 0 <= since < 1e11:
            raise ValueError(raw)
    except ValueError:
        raise ApiError(
            400,
            "invalid_since",
            "since must be unix seconds",
            [{"name": "since", "description": "unix seconds"}],
        ) from None
    cursor: tuple[int, str] | None = (int(since * 1000) - 1, "")
    requeued = 0
    now = ctx.clock.now()
    while True:
        items, cursor = await store.list_deliveries(
            subscription_id=sub.id, cursor=cursor, limit=200
        )
        for d in items:
            if (
                d.status in (DeliveryStatus.DEAD, DeliveryStatus.FAILED)
                and await store.requeue(d, now) is Verdict.OK
            ):
                requeued += 1
        if cursor is None:
            break
    ctx.on_delivery_work()
    return Answer({"subscription_id": sub.id, "requeued": requeued})
