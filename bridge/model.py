"""Domain values: frozen dataclasses and enums, free of I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from bridge.event_types import type_matches
from bridge.metadata import holds


class Outcome(enum.StrEnum):
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELED = "canceled"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"

    @property
    def event_type(self) -> str:
        return f"import.{self.value}"


class WatchState(enum.StrEnum):
    WATCHING = "watching"
    TERMINAL = "terminal"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"


def state_for(outcome: Outcome) -> WatchState:
    if outcome is Outcome.NOT_FOUND:
        return WatchState.NOT_FOUND
    if outcome is Outcome.EXPIRED:
        return WatchState.EXPIRED
    return WatchState.TERMINAL


MAX_STATUS = 200  # characters of an upstream status kept (events, the watch)
MAX_TIME = 64  # characters: longer than any ISO 8601 time


@dataclass(frozen=True, slots=True)
class Counts:
    total: int | None = None
    succeeded: int | None = None
    failed: int | None = None

    @property
    def processed(self) -> int | None:
        if self.succeeded is None and self.failed is None:
            return None
        return (self.succeeded or 0) + (self.failed or 0)

    def as_dict(self) -> dict[str, int | None]:
        return {"total": self.total, "succeeded": self.succeeded, "failed": self.failed}


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """One upstream answer about one job, normalised. The texts an event carries are
    bounded here, whatever the provider: an upstream's status is at most MAX_STATUS
    characters, and a time longer than any ISO 8601 time is no time."""

    status: str
    outcome: Outcome | None
    counts: Counts = field(default_factory=Counts)
    created_at: str | None = None
    finished_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.status) > MAX_STATUS:
            object.__setattr__(self, "status", self.status[:MAX_STATUS])
        for name in ("created_at", "finished_at"):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_TIME:
                object.__setattr__(self, name, None)

    @property
    def terminal(self) -> bool:
        return self.outcome is not None


@dataclass(frozen=True, slots=True)
class WatchKey:
    source: str
    kind: str
    job_id: str


@dataclass(frozen=True, slots=True)
class Watch:
    """A watch as stored; timestamps are unix seconds."""

    id: str
    source: str
    kind: str
    job_id: str
    state: WatchState
    created_at: float
    status: str | None = None
    outcome: Outcome | None = None
    counts: Counts = field(default_factory=Counts)
    polls: int = 0
    errors: int = 0
    not_found: int = 0
    interval_s: float = 0.0
    last_polled_at: float | None = None
    next_poll_at: float | None = None
    terminal_at: float | None = None
    last_error: str | None = None
    progress: tuple[tuple[float, float, int], ...] = ()  # (first seen, last seen, count) per count
    poll_reason: str | None = None  # why next_poll_at is what it is (see PollReason)
    lease: int = 0
    snapshot: dict[str, Any] | None = None
    discovered: bool = False  # registered by Talkdesk discovery, not through the API
    # The terminal status was seen at this time, and the errors sample is awaited
    waiting_since: float | None = None
    progress_events: int = 0  # import.progress events written for this job
    progress_event_at: float | None = None
    progress_step: int = -1  # the last step (done share // poll.progress_step) announced
    # The last polls, newest last: (time, why it was made, what it found)
    timeline: tuple[tuple[float, str, str], ...] = ()
    metadata: dict[str, str] | None = None  # as registered (bridge/metadata.py)

    # The transitions of a watch, written once (the poller decides which). A poll makes
    # one copy of the watch: dataclasses.replace is not cheap on the hot path.
    def polled(self, now: float, found: str, **changes: Any) -> Watch:
        """One more poll, noted in the timeline (why it was made, what it found), with
        whatever else it changed."""
        entry = (now, self.poll_reason or "new", found[:80])
        timeline = (*self.timeline, entry)[-TIMELINE_LENGTH:]
        return replace(self, polls=self.polls + 1, last_polled_at=now, timeline=timeline, **changes)

    def answered(self, now: float, snap: JobSnapshot, **changes: Any) -> Watch:
        """A good answer: its status, counts and body; the error counters cleared."""
        return self.polled(
            now,
            snap.status,
            status=snap.status,
            counts=snap.counts,
            errors=0,
            not_found=0,
            last_error=None,
            snapshot=snap.raw,
            **changes,
        )

    def failed(self, error: str) -> Watch:
        """A poll that yielded no answer: backed off."""
        return replace(self, errors=self.errors + 1, last_error=error[:300], poll_reason="backoff")

    def missing(self, error: str) -> Watch:
        """A poll the upstream answered 404: confirmed after several."""
        return replace(self, not_found=self.not_found + 1, last_error=error, poll_reason="backoff")

    def ended(self, outcome: Outcome, now: float) -> Watch:
        """Terminal. The upstream body is dropped: the watch's one event carries it (it
        was kept only for an event made without a fresh answer), so it is stored once."""
        return replace(
            self, state=state_for(outcome), outcome=outcome, terminal_at=now, snapshot=None
        )


TIMELINE_LENGTH = 20  # polls a watch's timeline keeps, the newest


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    timestamp: str
    watch_id: str
    data: dict[str, Any]
    # W3C traceparent of the poll that made it (tracing.py): its deliveries' parent
    trace: str | None = None

    def envelope(self) -> dict[str, Any]:
        """The webhook body of DESIGN §5."""
        return {"type": self.type, "timestamp": self.timestamp, "data": self.data}


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    url: str
    secrets: tuple[tuple[str, float | None], ...]  # (secret, expires_at or None), newest first
    event_types: tuple[str, ...] = ("import.*",)
    sources: tuple[str, ...] = ()
    format: str = "standard"
    headers: tuple[tuple[str, str], ...] = ()
    description: str | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: float | None = None
    created_at: float = 0.0
    static: bool = False
    metadata: tuple[tuple[str, str], ...] = ()  # only watches whose metadata holds these

    def live_secrets(self, now: float) -> list[str]:
        return [s for s, until in self.live_secrets_with_expiry(now)]

    def live_secrets_with_expiry(self, now: float) -> list[tuple[str, float | None]]:
        return [(s, until) for s, until in self.secrets if until is None or until > now]

    def matches(
        self, event_type: str, source: str | None, metadata: Mapping[str, str] | None = None
    ) -> bool:
        if self.sources and not any(source_named(p, source) for p in self.sources):
            return False
        # the filter is on watches: events of no watch (source.*, ping) pass it
        watch_event = event_type.startswith("import.")
        if self.metadata and watch_event and not holds(metadata, dict(self.metadata)):
            return False
        return any(type_matches(p, event_type) for p in self.event_types)


def source_named(entry: str, source: str | None) -> bool:
    """A subscription's `sources` entry names this source: the name, or a pattern with
    * or ? in it (`acme-*`; what a token scoped to tenants subscribes to)."""
    if source is None:
        return False
    if "*" in entry or "?" in entry:
        return fnmatchcase(source, entry)
    return entry == source


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # not attempted yet
    FAILED = "failed"  # attempted, failed, a retry is scheduled
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # the schedule is used up (or the subscription is gone)
    SUPERSEDED = "superseded"  # progress not sent before the job's terminal event


@dataclass(frozen=True, slots=True)
class Attempt:
    at: float
    status: int | None
    latency_s: float
    error: str | None = None
    snippet: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event_id: str
    subscription_id: str
    status: DeliveryStatus
    created_at: float
    detected_at: float  # when the event was generated: for time-to-deliver
    attempts: tuple[Attempt, ...] = ()
    failures: int = 0
    next_attempt_at: float | None = None
    lease: int = 0

    # The transitions of a delivery, written once (the deliverer decides which).
    def succeeded(self, attempt: Attempt) -> Delivery:
        return replace(
            self,
            status=DeliveryStatus.SUCCEEDED,
            attempts=(*self.attempts, attempt),
            next_attempt_at=None,
        )

    def failed(self, attempt: Attempt, retry_at: float) -> Delivery:
        """A failed attempt; the next one at retry_at."""
        return replace(
            self,
            status=DeliveryStatus.FAILED,
            attempts=(*self.attempts, attempt),
            failures=self.failures + 1,
            next_attempt_at=retry_at,
        )

    def dead(self, attempt: Attempt) -> Delivery:
        """A failed attempt, and no more: dead-lettered (kept, listable, retryable)."""
        return replace(
            self,
            status=DeliveryStatus.DEAD,
            attempts=(*self.attempts, attempt),
            failures=self.failures + 1,
            next_attempt_at=None,
        )

    def given_up(self, now: float, why: str) -> Delivery:
        """Dead without an attempt: nothing left to deliver, or nobody to deliver to."""
        return replace(
            self,
            status=DeliveryStatus.DEAD,
            attempts=(*self.attempts, Attempt(now, None, 0.0, why)),
            next_attempt_at=None,
        )

    def later(self, at: float) -> Delivery:
        """Not attempted now: due again at `at`."""
        return replace(self, next_attempt_at=at)


class Role(enum.StrEnum):
    """What one process does; `import-bridge run --role` picks some, the default is all."""

    API = "api"
    POLLER = "poller"
    DELIVERER = "deliverer"


ALL_ROLES = frozenset(Role)
