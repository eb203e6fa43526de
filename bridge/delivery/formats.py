"""Webhook bodies: the Standard Webhooks envelope, or a chat service's incoming-webhook
shape with a one-line summary. Pure."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
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


_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def as_is(value: Any) -> str:
    """On one line: a value cannot start a line of its own (a heading, a quote)."""
    return _LINE_BREAKS.sub(" ", str(value))


def slack_text(value: Any) -> str:
    """Slack's mrkdwn: `<…>` makes links and channel pings; & < > are its escapes."""
    return as_is(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_text(value: Any) -> str:
    """Teams' card text is markdown with some HTML: & < > as entities, and the
    brackets of a masked link `[text](url)` too, so no link hides where it goes."""
    return slack_text(value).replace("[", "&#91;").replace("]", "&#93;")


_DISCORD_MARKUP = re.compile(r"([\\*_~`|>\[\]()<@])")


def discord_text(value: Any) -> str:
    """Discord's markdown (masked links, mentions, emphasis) shown as typed."""
    return _DISCORD_MARKUP.sub(r"\\\1", as_is(value))


def summary(event: Event, quote: Callable[[Any], str] = as_is) -> str:
    """One readable line: what happened, to which job, with counts. Every value that
    came from outside (an upstream, an operator) goes through `quote`: it is text in
    the chat, never markup."""
    d = {k: quote(v) if v is not None else None for k, v in event.data.items() if k != "counts"}
    icon = _ICONS.get(event.type, "🔔")
    kind = quote(event.type)
    if event.type == "ping":
        return f"{icon} ping from the import-job bridge (subscription test)"
    if event.type.startswith("import."):
        line = (
            f"{icon} {kind}: {d.get('source')}/{d.get('kind')} job {d.get('job_id')}"
            f" is {d.get('status') or d.get('outcome')}"
        )
        counts = event.data.get("counts") or {}
        parts = [
            f"{quote(counts[k])} {k}"
            for k in ("succeeded", "failed", "total")
            if counts.get(k) is not None
        ]
        return line + (f" ({', '.join(parts)})" if parts else "")
    if event.type.startswith("source."):
        state = "recovered" if event.type == "source.recovered" else "is unhealthy"
        reason = f": {d.get('reason')}" if d.get("reason") else ""
        return f"{icon} source {d.get('source')} ({d.get('provider')}) {state}{reason}"
    detail = d.get("reason") or d.get("subscription_id") or ""
    return f"{icon} {kind}" + (f": {detail}" if detail else "")


def render(fmt: Format, event: Event) -> bytes:
    body: dict[str, Any]
    if fmt is Format.STANDARD:
        body = event.envelope()
    elif fmt is Format.SLACK:
        body = {"text": summary(event, slack_text)}
    elif fmt is Format.DISCORD:
        # no @everyone, @here, role or user ping, whatever the text says
        body = {
            "content": _cut(summary(event, discord_text), 2000),
            "allowed_mentions": {"parse": []},
        }
    else:  # Microsoft Teams incoming webhook (connector card): markdown and some HTML
        text = summary(event, teams_text)
        body = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": _cut(text, 100),
            "text": text,
        }
    return orjson.dumps(body)


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters, never ending inside an escape (a lone backslash
    or half an entity would escape what follows, or show as junk)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if (amp := cut.rfind("&")) > cut.rfind(";"):
        cut = cut[:amp]
    trailing = len(cut) - len(cut.rstrip("\\"))
    return cut[:-1] if trailing % 2 else cut
