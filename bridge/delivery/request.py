"""A webhook request as it goes out (body and headers), and as the console may show
it: the signature and every custom header value masked. Pure."""

from __future__ import annotations

from bridge.delivery import formats, signing
from bridge.delivery.headers import sendable
from bridge.model import Event, Subscription

MASK = "••••••"  # a signature's value or a custom header's


def webhook_request(
    sub: Subscription, event: Event, now: float, timestamp: int
) -> tuple[bytes, dict[str, str]]:
    """The body in the subscription's format, its custom headers, and the Standard
    Webhooks headers signed with every live secret (timestamp: this host's clock)."""
    body = formats.render(formats.Format(sub.format), event)
    headers = sendable(sub.headers)
    headers["content-type"] = "application/json"
    headers.update(signing.webhook_headers(sub.live_secrets(now), event.id, timestamp, body))
    return body, headers


def masked(sub: Subscription, headers: dict[str, str]) -> list[tuple[str, str]]:
    """The headers with nothing that proves or grants anything: a signature shows its
    scheme only, a custom header its name only (its value may be a credential)."""
    custom = {name.lower() for name, _ in sub.headers}
    out = []
    for name, value in headers.items():
        lower = name.lower()
        if lower == "webhook-signature":
            value = " ".join(f"{part.split(',', 1)[0]},{MASK}" for part in value.split())
        elif lower in custom:
            value = MASK
        out.append((name, value))
    return out
