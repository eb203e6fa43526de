"""Every event the bridge emits, and how each is named (its id scheme): DESIGN §5.
Pure: outcome, progress and source events from a watch's or a source's change;
subscription.disabled; ping."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from bridge.model import Event, JobSnapshot, Outcome, Watch

# A write that may announce a change, with nothing to announce: never written.
NO_EVENT = Event(id="", type="", timestamp="", watch_id="", data={})


def event_id(source: str, kind: str, job_id: str, event_type: str) -> str:
    """Deterministic, so every replica and every retry names the same event the same way."""
    digest = hashlib.sha256("\x1f".join((source, kind, job_id, event_type)).encode()).hexdigest()
    return "evt_" + digest[:32]


def iso_ms(ts: float) -> str:
    """Unix seconds → 2026-11-22T10:00:00.123Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


OMITTED = "too_large"  # data.job of an event whose upstream body was over the bound


def bounded_job(body: Any, max_bytes: int | None) -> Any:
    """The upstream body an event carries: as it came when its JSON fits in max_bytes,
    else a note of its size, so no webhook carries an upstream's arbitrary bulk."""
    if body is None or max_bytes is None:
        return body
    if isinstance(body, dict) and body.get("omitted") == OMITTED:
        return body  # already the note (the watch keeps it): its size is the body's
    try:
        size = len(orjson.dumps(body))
    except (TypeError, orjson.JSONEncodeError):  # nested past what JSON writers take
        size = max_bytes + 1
    if size <= max_bytes:
        return body
    return {"omitted": OMITTED, "bytes": size, "max_bytes": max_bytes}


def job_omitted(event: Event) -> bool:
    job = event.data.get("job")
    return isinstance(job, dict) and job.get("omitted") == OMITTED


def outcome_event(
    *,
    watch: Watch,
    provider: str,
    outcome: Outcome,
    previous_status: str | None,
    detected_at: float,
    snapshot: JobSnapshot | None,
    extra: dict[str, Any] | None = None,
    max_job_bytes: int | None = None,
) -> Event:
    """The event for a watch that reached `outcome` (terminal, not found or expired);
    `extra` adds fields to its data (the errors sample of a failed FullStory job);
    data.job is the upstream body as last seen, bounded by max_job_bytes."""
    type_ = outcome.event_type
    data: dict[str, Any] = {
        "watch_id": watch.id,
        "source": watch.source,
        "provider": provider,
        "kind": watch.kind,
        "job_id": watch.job_id,
        "status": snapshot.status if snapshot else watch.status,
        "outcome": outcome.value,
        "previous_status": previous_status,
        "counts": (snapshot.counts if snapshot else watch.counts).as_dict(),
        "created_at": snapshot.created_at if snapshot else None,
        "finished_at": snapshot.finished_at if snapshot else None,
        "detected_at": iso_ms(detected_at),
        "job": bounded_job(snapshot.raw if snapshot else (watch.snapshot or None), max_job_bytes),
        "metadata": watch.metadata or {},
        **(extra or {}),
    }
    return Event(
        id=event_id(watch.source, watch.kind, watch.job_id, type_),
        type=type_,
        timestamp=iso_ms(detected_at),
        watch_id=watch.id,
        data=data,
    )


def source_event(
    *, source: str, provider: str, healthy: bool, reason: str | None, now: float
) -> Event:
    """source.unhealthy / source.recovered: a source's credentials stopped or resumed
    working. Named by the moment of the change, so each change is its own event."""
    type_ = "source.recovered" if healthy else "source.unhealthy"
    return Event(
        id=f"evt_{type_.replace('.', '_')}_{source}_{round(now * 1000)}",
        type=type_,
        timestamp=iso_ms(now),
        watch_id="",
        data={"source": source, "provider": provider, "reason": reason},
    )


def progress_event(
    *,
    watch: Watch,
    provider: str,
    snapshot: JobSnapshot,
    previous_status: str | None,
    seq: int,
    now: float,
) -> Event:
    """import.progress: a running job's status or counts moved. Named by the job and
    its sequence number, so a retried write names it the same."""
    counts = snapshot.counts
    done = counts.processed
    share = done / counts.total if counts.total and done is not None else None
    digest = hashlib.sha256(
        "\x1f".join((watch.source, watch.kind, watch.job_id, str(seq))).encode()
    ).hexdigest()
    return Event(
        id=f"evt_progress_{digest[:32]}",
        type="import.progress",
        timestamp=iso_ms(now),
        watch_id=watch.id,
        data={
            "watch_id": watch.id,
            "source": watch.source,
            "provider": provider,
            "kind": watch.kind,
            "job_id": watch.job_id,
            "status": snapshot.status,
            "previous_status": previous_status,
            "counts": counts.as_dict(),
            "progress": None if share is None else round(min(1.0, share), 4),
            "sequence": seq,
            "detected_at": iso_ms(now),
            "metadata": watch.metadata or {},
        },
    )


def disabled_event(*, subscription_id: str, url: str, reason: str, now: float) -> Event:
    """subscription.disabled: named by the subscription and the second it happened. The
    URL is scheme and host alone: paths of incoming-webhook URLs are secrets."""
    parts = urlsplit(url)
    return Event(
        id="evt_disabled_" + subscription_id.removeprefix("sub_") + f"_{int(now)}",
        type="subscription.disabled",
        timestamp=iso_ms(now),
        watch_id="",
        data={
            "subscription_id": subscription_id,
            "url": f"{parts.scheme}://{parts.hostname}",
            "reason": reason,
        },
    )


def ping_event(*, subscription_id: str, now: float) -> Event:
    """ping: a subscription's test; each one its own (a random id)."""
    return Event(
        id="evt_ping_" + secrets.token_hex(12),
        type="ping",
        timestamp=iso_ms(now),
        watch_id="",
        data={"subscription_id": subscription_id, "message": "ping"},
    )
