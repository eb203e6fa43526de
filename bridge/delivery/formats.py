"""Webhook bodies: the Standard Webhooks envelope, or a chat service's incoming-webhook
shape with a one-line summary. Pure."""

from __future__ import annotations

import enum
from typing import Any

import orjson

from bridge.model import Event


class Format(enum.StrEnum):
    STANDARD = "standard"
    SLACK = "slack"
    DISCORD = "discord"
    TEAMS = "teams"


_ICONS = {
    "import.completed": "✅",
    "import.completed_with_errors": "⚠️",
    "import.failed": "❌",
    "import.canceled": "🚫",
    "import.not_found": "❓",
    "import.expired": "⌛",
    "ping": "🏓",
    "source.unhealthy": "🔴",
    "source.recovered": "🟢",
}


def summary(event: Event) -> str:
    """One readable line: what happened, to which job, with counts."""
    d = event.data
    icon = _ICONS.get(event.type, "🔔")
    if event.type == "ping":
        return f"{icon} ping from the import-job bridge (subscription test)"
    if event.type.startswith("import."):
        line = (
            f"{icon} {event.type}: {d.get('source')}/{d.get('kind')} job {d.get('job_id')}"
            f" is {d.get('status') or d.get('outcome')}"
        )
        counts = d.get("counts") or {}
        parts = [
            f"{counts[k]} {k}"
            for k in ("succeeded", "failed", "total")
            if counts.get(k) is not None
        ]
        return line + (f" ({', '.join(parts)})" if parts else "")
    if event.type.startswith("source."):
        state = "recovered" if event.type == "source.recovered" else "is unhealthy"
        reason = f": {d.get('reason')}" if d.get("reason") else ""
        return f"{icon} source {d.get('source')} ({d.get('provider')}) {state}{reason}"
    detail = d.get("reason") or d.get("subscription_id") or ""
    return f"{icon} {event.type}" + (f": {detail}" if detail else "")


def render(fmt: Format, event: Event) -> bytes:
    body: dict[str, Any]
    if fmt is Format.STANDARD:
        body = event.envelope()
    elif fmt is Format.SLACK:
        body = {"text": summary(event)}
    elif fmt is Format.DISCORD:
        body = {"content": summary(event)[:2000]}
    else:  # Microsoft Teams incoming webhook (connector card)
        text = summary(event)
        body = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": text[:100],
            "text": text,
        }
    return orjson.dumps(body)
