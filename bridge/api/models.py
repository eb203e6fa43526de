"""Request and response models of the admin API (pydantic at the boundary)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from bridge import metadata
from bridge.events import iso_ms
from bridge.job_ids import has_dot_segment
from bridge.model import Event, Watch

# A string map, bounded (bridge/metadata.py): on watches, and on subscriptions as a filter
Metadata = Annotated[dict[str, str] | None, AfterValidator(metadata.checked)]


class WatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=100)
    # no control characters or "/"; "." and ".." would be path steps in a job URL
    job_id: str = Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f/]+$")
    kind: str | None = Field(default=None, min_length=1, max_length=50)
    metadata: Metadata = None  # set when the watch is created

    @field_validator("job_id")
    @classmethod
    def _not_a_path_step(cls, v: str) -> str:
        if has_dot_segment(v):  # ., .., ..;x, ..\\x, %2e%2e: a parent path upstream
            raise ValueError("a job id cannot hold a path step (. or .. in any spelling)")
        return v


class WatchBatch(BaseModel):
    """POST /v1/watches/batch (the schema for the OpenAPI document; each item is checked
    on its own, so one bad item fails alone)."""

    model_config = ConfigDict(extra="forbid")
    items: list[WatchCreate] = Field(min_length=1, max_length=1000)


def watch_view(watch: Watch, waiting: str | None = None) -> dict[str, Any]:
    """A watch as the API shows it; waiting: why it waits in its source's backlog (due,
    but given no slot yet: `rate_limited` or `paused`), which is then its poll_reason."""
    reason = waiting or watch.poll_reason
    return {
        "id": watch.id,
        "source": watch.source,
        "kind": watch.kind,
        "job_id": watch.job_id,
        "state": watch.state.value,
        "status": watch.status,
        "outcome": watch.outcome.value if watch.outcome else None,
        "counts": watch.counts.as_dict(),
        "polls": watch.polls,
        "errors": watch.errors,
        "last_error": watch.last_error,
        "created_at": iso(watch.created_at),
        "last_polled_at": iso(watch.last_polled_at),
        "next_poll_at": iso(watch.next_poll_at),
        "poll_reason": reason if watch.state.value == "watching" else None,
        "terminal_at": iso(watch.terminal_at),
        "discovered": watch.discovered,
        "metadata": watch.metadata or {},
    }


def event_view(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "timestamp": event.timestamp,
        "watch_id": event.watch_id,
        "data": event.data,
    }


def iso(ts: float | None) -> str | None:
    return iso_ms(ts) if ts is not None else None


def encode_cursor(cursor: tuple[int, str] | None) -> str | None:
    if cursor is None:
        return None
    return base64.urlsafe_b64encode(f"{cursor[0]}:{cursor[1]}".encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[int, str] | None:
    """Raises ValueError on a cursor this API did not hand out."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        score, member = raw.split(":", 1)
        return int(score), member
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("cursor is not one this API returned") from None
