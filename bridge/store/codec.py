"""Watches and events to and from their Redis representation (flat string fields)."""

from __future__ import annotations

import json
from typing import Any

from bridge.model import Counts, Event, Outcome, Watch, WatchState


def _opt_float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _opt_int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def counts_to_json(counts: Counts) -> str:
    return json.dumps(counts.as_dict(), separators=(",", ":"))


def counts_from_json(text: str | None) -> Counts:
    if not text:
        return Counts()
    data = json.loads(text)
    return Counts(
        total=data.get("total"), succeeded=data.get("succeeded"), failed=data.get("failed")
    )


def watch_to_fields(watch: Watch) -> dict[str, str]:
    """Every field of a watch as strings; None becomes ''."""
    fields: dict[str, Any] = {
        "id": watch.id,
        "source": watch.source,
        "kind": watch.kind,
        "job_id": watch.job_id,
        "state": watch.state.value,
        "created_at": watch.created_at,
        "status": watch.status,
        "outcome": watch.outcome.value if watch.outcome else None,
        "counts": counts_to_json(watch.counts),
        "polls": watch.polls,
        "errors": watch.errors,
        "not_found": watch.not_found,
        "interval_s": watch.interval_s,
        "last_polled_at": watch.last_polled_at,
        "next_poll_at": watch.next_poll_at,
        "terminal_at": watch.terminal_at,
        "last_error": watch.last_error,
        "progress_t0": watch.progress_t0,
        "progress_done0": watch.progress_done0,
        "snapshot": json.dumps(watch.snapshot, separators=(",", ":")) if watch.snapshot else None,
    }
    return {k: "" if v is None else str(v) for k, v in fields.items()}


def watch_from_fields(fields: dict[str, str]) -> Watch:
    snapshot = fields.get("snapshot")
    outcome = fields.get("outcome")
    return Watch(
        id=fields["id"],
        source=fields["source"],
        kind=fields["kind"],
        job_id=fields["job_id"],
        state=WatchState(fields["state"]),
        created_at=float(fields["created_at"]),
        status=fields.get("status") or None,
        outcome=Outcome(outcome) if outcome else None,
        counts=counts_from_json(fields.get("counts")),
        polls=int(fields.get("polls") or 0),
        errors=int(fields.get("errors") or 0),
        not_found=int(fields.get("not_found") or 0),
        interval_s=float(fields.get("interval_s") or 0),
        last_polled_at=_opt_float(fields.get("last_polled_at")),
        next_poll_at=_opt_float(fields.get("next_poll_at")),
        terminal_at=_opt_float(fields.get("terminal_at")),
        last_error=fields.get("last_error") or None,
        progress_t0=_opt_float(fields.get("progress_t0")),
        progress_done0=_opt_int(fields.get("progress_done0")),
        lease=int(fields.get("lease") or 0),
        snapshot=json.loads(snapshot) if snapshot else None,
    )


def changed_fields(before: Watch, after: Watch) -> dict[str, str]:
    """Only the fields that differ: smaller writes on the hot path."""
    old, new = watch_to_fields(before), watch_to_fields(after)
    return {k: v for k, v in new.items() if old.get(k) != v}


def event_to_json(event: Event) -> str:
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "timestamp": event.timestamp,
            "watch_id": event.watch_id,
            "data": event.data,
        },
        separators=(",", ":"),
    )


def event_from_json(text: str) -> Event:
    data = json.loads(text)
    return Event(
        id=data["id"],
        type=data["type"],
        timestamp=data["timestamp"],
        watch_id=data["watch_id"],
        data=data["data"],
    )


def flatten(fields: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in fields.items():
        out += [key, value]
    return out


def pairs_to_dict(flat: list[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}
