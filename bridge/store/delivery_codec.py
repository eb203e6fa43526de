"""Subscriptions and deliveries as the JSON documents kept in Redis."""

from __future__ import annotations

from dataclasses import replace

import orjson

from bridge.model import Attempt, Delivery, DeliveryStatus, Subscription
from bridge.sealing import Sealer, SealError

CLEAR = Sealer()  # no keys: values as they are

KEEP_ATTEMPTS = 20  # attempts kept per delivery (the newest)


def sub_to_json(sub: Subscription, sealer: Sealer = CLEAR) -> str:
    """Its secrets and custom header values sealed (sealing.py), each bound to it."""
    secret, header = f"subscription secret {sub.id}", f"subscription header {sub.id}"
    return orjson.dumps(
        {
            "id": sub.id,
            "url": sub.url,
            "secrets": [[sealer.seal(s, secret), until] for s, until in sub.secrets],
            "event_types": list(sub.event_types),
            "sources": list(sub.sources),
            "format": sub.format,
            "headers": [[k, sealer.seal(v, f"{header} {k.lower()}")] for k, v in sub.headers],
            "description": sub.description,
            "enabled": sub.enabled,
            "disabled_reason": sub.disabled_reason,
            "failing_since": sub.failing_since,
            "created_at": sub.created_at,
            "static": sub.static,
            "metadata": dict(sub.metadata),
        }
    ).decode()


def sub_from_json(text: str, sealer: Sealer = CLEAR, *, lenient: bool = False) -> Subscription:
    """SealError when a secret does not open with the keys at hand; lenient: then
    without its secrets and header values (to match events with, never to send)."""
    d = orjson.loads(text)
    if lenient:
        try:
            return sub_from_json(text, sealer)
        except SealError:
            d = {**d, "secrets": [], "headers": []}
    secret, header = f"subscription secret {d['id']}", f"subscription header {d['id']}"
    return Subscription(
        id=d["id"],
        url=d["url"],
        secrets=tuple((sealer.open(s, secret), until) for s, until in d["secrets"]),
        event_types=tuple(d["event_types"]),
        sources=tuple(d["sources"]),
        format=d["format"],
        headers=tuple((k, sealer.open(v, f"{header} {k.lower()}")) for k, v in d["headers"]),
        description=d.get("description"),
        enabled=d["enabled"],
        disabled_reason=d.get("disabled_reason"),
        failing_since=d.get("failing_since"),
        created_at=d.get("created_at", 0.0),
        static=d.get("static", False),
        metadata=tuple((d.get("metadata") or {}).items()),
    )


def delivery_to_json(d: Delivery) -> str:
    return orjson.dumps(
        {
            "id": d.id,
            "event_id": d.event_id,
            "subscription_id": d.subscription_id,
            "status": d.status.value,
            "created_at": d.created_at,
            "detected_at": d.detected_at,
            "attempts": [
                [a.at, a.status, a.latency_s, a.error, a.snippet]
                for a in d.attempts[-KEEP_ATTEMPTS:]
            ],
            "failures": d.failures,
            "next_attempt_at": d.next_attempt_at,
        }
    ).decode()


def delivery_from_json(text: str, lease: int = 0) -> Delivery:
    d = orjson.loads(text)
    return Delivery(
        id=d["id"],
        event_id=d["event_id"],
        subscription_id=d["subscription_id"],
        status=DeliveryStatus(d["status"]),
        created_at=d["created_at"],
        detected_at=d["detected_at"],
        attempts=tuple(Attempt(*a) for a in d["attempts"]),
        failures=d["failures"],
        next_attempt_at=d.get("next_attempt_at"),
        lease=lease,
    )


def with_state(sub: Subscription, state: dict[str, str]) -> Subscription:
    if not state:
        return sub
    failing = state.get("failing_since")
    return replace(
        sub,
        enabled=state.get("enabled", "1") != "0",
        disabled_reason=state.get("disabled_reason") or None,
        failing_since=float(failing) if failing else None,
    )
