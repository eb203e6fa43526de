"""Watches and events to and from their Redis representation (flat string fields).

A watch is a hash: `state`, `source`, `lease`, `prio` (read by the claim script),
`kind`, `job`, `at` (created, unix ms) and `doc`, the rest as JSON with every field
at its default left out. Each value of a watch not yet answered fits Redis's compact
hash encoding (64 bytes). Versions before 0.3 kept everything in `doc` under a random
id; such a record (it has no `kind`) is still read, and written back as it was.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from bridge.model import Counts, Event, Outcome, Watch, WatchState

# What watch_from_doc takes for a field the document leaves out.
DEFAULTS: dict[str, Any] = {
    "status": None,
    "outcome": None,
    "counts": {"total": None, "succeeded": None, "failed": None},
    "polls": 0,
    "errors": 0,
    "not_found": 0,
    "interval_s": 0.0,
    "last_polled_at": None,
    "next_poll_at": None,
    "terminal_at": None,
    "last_error": None,
    "progress": [],
    "poll_reason": None,
    "snapshot": None,
    "metadata": None,
}


# The hash fields a watch is read from, in watch_from_record's order.
RECORD_FIELDS = ["lease", "state", "source", "kind", "job", "at", "doc"]


def watch_id(source: str, kind: str, job_id: str) -> str:
    """A job's watch id, the same on every replica: registration needs no lookup key.
    80 bits, as the random ids before (a collision among a billion watches: 1 in 2.4M)."""
    digest = hashlib.sha256("\x1f".join((source, kind, job_id)).encode()).hexdigest()
    return "w_" + digest[:20]


def is_legacy(watch: Watch) -> bool:
    """A watch registered before 0.3 (a random id): one JSON document, found through a
    lookup key."""
    return watch.id != watch_id(watch.source, watch.kind, watch.job_id)


def identity_fields(watch: Watch) -> list[str | int]:
    """What a new watch's hash holds beside its doc: kind, job, at (ms: Redis keeps an
    integer in fewer bytes than its text)."""
    return [watch.kind, watch.job_id, round(watch.created_at * 1000)]


def watch_to_doc(watch: Watch) -> str:
    """A watch's `doc` (the lease token lives beside it, not in it). A field at its
    default (none, zero, empty) is left out, and so are those the hash holds: a new
    watch's doc is a few dozen bytes. A legacy watch's doc keeps them all."""
    optional: dict[str, Any] = {
        "status": watch.status,
        "outcome": watch.outcome.value if watch.outcome else None,
        "counts": watch.counts.as_dict(),
        "polls": watch.polls,
        "errors": watch.errors,
        "not_found": watch.not_found,
        "interval_s": watch.interval_s,
        "last_polled_at": watch.last_polled_at,
        "next_poll_at": watch.next_poll_at,
        "terminal_at": watch.terminal_at,
        "last_error": watch.last_error,
        "progress": [list(sample) for sample in watch.progress],
        "poll_reason": watch.poll_reason,
        "snapshot": watch.snapshot,
        "metadata": watch.metadata or None,
    }
    doc: dict[str, Any] = {k: v for k, v in optional.items() if v != DEFAULTS[k]}
    legacy = is_legacy(watch)
    if not legacy and watch.state.value == "watching":
        # left out while it is the time of creation (a new watch), so kept when none
        if watch.next_poll_at == watch.created_at:
            del doc["next_poll_at"]
        elif watch.next_poll_at is None:
            doc["next_poll_at"] = None
    if legacy:
        doc.update(
            id=watch.id,
            source=watch.source,
            kind=watch.kind,
            job_id=watch.job_id,
            state=watch.state.value,
            created_at=watch.created_at,
        )
    if watch.discovered:
        doc["discovered"] = True
    if watch.waiting_since is not None:
        doc["waiting_since"] = watch.waiting_since
    if watch.timeline:
        doc["timeline"] = [list(t) for t in watch.timeline]
    if watch.progress_events:
        doc["progress_events"] = watch.progress_events
        doc["progress_event_at"] = watch.progress_event_at
        doc["progress_step"] = watch.progress_step
    return orjson.dumps(doc).decode()


def watch_from_record(watch_id: str, fields: list[Any]) -> Watch | None:
    """A watch from its hash fields in RECORD_FIELDS' order; None when there is none
    (no hash, or one that says the watch was deleted)."""
    lease, state, source, kind, job, at, doc = fields
    if not doc or state == "deleted":
        return None
    if kind is None:  # a legacy record: all in the doc
        return watch_from_doc(doc, int(lease or 0))
    d = orjson.loads(doc)
    created = int(at) / 1000
    if state == "watching" and "next_poll_at" not in d:
        d["next_poll_at"] = created  # left out while it is the time of creation
    d.update(id=watch_id, source=source, kind=kind, job_id=job, state=state, created_at=created)
    return _watch(d, int(lease or 0))


def watch_from_doc(text: str, lease: int = 0) -> Watch:
    """A legacy record's doc, which holds the whole watch."""
    return _watch(orjson.loads(text), lease)


def _watch(d: dict[str, Any], lease: int) -> Watch:
    counts = d.get("counts") or {}
    return Watch(
        id=d["id"],
        source=d["source"],
        kind=d["kind"],
        job_id=d["job_id"],
        state=WatchState(d["state"]),
        created_at=d["created_at"],
        status=d.get("status"),
        outcome=Outcome(d["outcome"]) if d.get("outcome") else None,
        counts=Counts(counts.get("total"), counts.get("succeeded"), counts.get("failed")),
        polls=d.get("polls", 0),
        errors=d.get("errors", 0),
        not_found=d.get("not_found", 0),
        interval_s=d.get("interval_s", 0.0),
        last_polled_at=d.get("last_polled_at"),
        next_poll_at=d.get("next_poll_at"),
        terminal_at=d.get("terminal_at"),
        last_error=d.get("last_error"),
        progress=_progress(d),
        poll_reason=d.get("poll_reason"),
        lease=lease,
        snapshot=d.get("snapshot"),
        discovered=bool(d.get("discovered", False)),
        waiting_since=d.get("waiting_since"),
        progress_events=int(d.get("progress_events", 0)),
        progress_event_at=d.get("progress_event_at"),
        progress_step=int(d.get("progress_step", -1)),
        timeline=_timeline(d.get("timeline")),
        metadata=d.get("metadata"),
    )


def _timeline(entries: list[Any] | None) -> tuple[tuple[float, str, str], ...]:
    # decoded on every claim: the entries as they are when well formed (as this
    # version writes them), converted one by one otherwise
    if not entries:
        return ()
    if all(len(t) == 3 and type(t[0]) is float for t in entries):
        return tuple(map(tuple, entries))
    return tuple((float(t[0]), str(t[1]), str(t[2])) for t in entries if len(t) == 3)


def _progress(d: dict[str, Any]) -> tuple[tuple[float, float, int], ...]:
    """Progress samples (first seen, last seen, count); older versions kept (time,
    count) pairs, or only the first reading."""
    if d.get("progress"):
        return tuple(_sample(s) for s in d["progress"])
    if d.get("progress_t0") is not None and d.get("progress_done0") is not None:
        t0 = float(d["progress_t0"])
        return ((t0, t0, int(d["progress_done0"])),)
    return ()


def _sample(s: list[Any]) -> tuple[float, float, int]:
    if len(s) == 3:
        return float(s[0]), float(s[1]), int(s[2])
    return float(s[0]), float(s[0]), int(s[1])


def event_to_json(event: Event) -> str:
    doc = {
        "id": event.id,
        "type": event.type,
        "timestamp": event.timestamp,
        "watch_id": event.watch_id,
        "data": event.data,
    }
    if event.trace:
        doc["trace"] = event.trace
    return orjson.dumps(doc).decode()


def event_from_json(text: str) -> Event:
    data = orjson.loads(text)
    return Event(
        id=data["id"],
        type=data["type"],
        timestamp=data["timestamp"],
        watch_id=data["watch_id"],
        data=data["data"],
        trace=data.get("trace"),
    )
