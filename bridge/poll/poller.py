"""The poller: claims due watches from Redis, polls them politely, records the result.

One Poller per process; any number of processes share the schedule in Redis.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from bridge.clock import Clock
from bridge.errors import (
    AuthError,
    NoSlot,
    NotFoundError,
    RateLimitedError,
    StoreOutage,
    TransientUpstreamError,
    failure_name,
)
from bridge.events import bounded_job, job_omitted, outcome_event, source_event
from bridge.metrics import POLL_RESULTS, Metrics
from bridge.model import Event, JobSnapshot, Outcome, Watch
from bridge.outage import OutageLog
from bridge.poll import backoff, health, priority
from bridge.poll.duration_policy import learned_interval
from bridge.poll.progress import ProgressEvents
from bridge.poll.ratelimit import late_allowance_s, limiter_burst, outside_claim_wait_s
from bridge.providers.base import (
    FailureDetails,
    Provider,
    classify,
    decode_json,
    fetch_snapshot,
)
from bridge.providers.http import HttpClient
from bridge.settings import PollSettings
from bridge.store.durations import DurationStore
from bridge.store.redis import Claimed, RedisStore, WorkerRoom
from bridge.store.verdicts import Verdict
from bridge.tracing import Tracing
from bridge.workers import WorkerPool

log = structlog.get_logger("bridge.poll")

# How long a failed job waits for its failure details (202: being prepared).
ERRORS_WAIT_S = 120.0

# A write that ends a poll, refused by Redis (full, read-only, silent), is tried again
# this soon, then less often, while the lease lasts: work resumes within about a
# second of Redis taking writes again, instead of when the lease runs out.
WRITE_RETRY_FIRST_S = 0.1
WRITE_RETRY_MAX_S = 1.0

# Outcomes the bridge decided, not the upstream: no duration to learn from.
_NOT_ENDED_UPSTREAM = frozenset({Outcome.NOT_FOUND, Outcome.EXPIRED})


@dataclass(frozen=True)
class PolledSource:
    name: str
    provider: Provider
    rate_limit: float
    burst: int


class Poller:
    def __init__(
        self,
        *,
        store: RedisStore,
        http: HttpClient,
        sources: dict[str, PolledSource],
        settings: PollSettings,
        clock: Clock,
        metrics: Metrics,
        rand: Callable[[], float] = random.random,
        on_event: Callable[[], object] = lambda: None,
        outage: OutageLog | None = None,
        durations: DurationStore | None = None,
        progress: ProgressEvents | None = None,
        tracing: Tracing | None = None,
        deleted: Collection[str] = (),
    ) -> None:
        self._progress = progress
        self._tracing = tracing or Tracing()
        self._outage = outage or OutageLog()
        self._store = store
        self._durations = durations
        self._http = http
        self._sources = sources
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._rand = rand
        self._on_event = on_event  # a local deliverer picks the event up without waiting a tick
        self._health: dict[str, bool] = {}  # as last written or read fleet-wide
        self._refusals: dict[str, health.Refusals] = {}
        self._metric_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._rate_limits = {n: (s.rate_limit, limiter_burst(s.burst)) for n, s in sources.items()}
        self._deleted = frozenset(deleted)  # sources deleted through the API
        # A source that hangs holds no more than what the others leave it: each source
        # keeps a few workers free for itself (as the deliverer caps each subscription).
        self._held: dict[str, int] = {}  # claimed, not yet ended, per source
        self.pool: WorkerPool[Claimed] = WorkerPool(
            "poller",
            settings.concurrency,
            claim=self._claim,
            handle=self._poll_held,
            hand_back=self._hand_back_held,
            outage=outage,
            start_in=lambda claimed: claimed.delay_s,
        )

    def update_sources(
        self, fresh: Mapping[str, PolledSource], gone: Collection[str], deleted: Collection[str]
    ) -> None:
        """Sources defined, changed (fresh) or deleted (gone) at run time; the cost is
        that of the change, not of every source."""
        for name in {*gone, *fresh}:  # what was learned of the old definition goes
            self._sources.pop(name, None)
            self._rate_limits.pop(name, None)
            self._health.pop(name, None)
            self._refusals.pop(name, None)
            for result in POLL_RESULTS:
                self._metric_children.pop((name, result), None)
        for name, src in fresh.items():
            self._sources[name] = src
            self._rate_limits[name] = (src.rate_limit, limiter_burst(src.burst))
        self._deleted = frozenset(deleted)

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.pool.start()

    def wake(self) -> None:
        """Look for due watches now (the ticker calls this)."""
        self.pool.wake()

    def begin_stop(self) -> None:
        self.pool.begin_stop()

    async def stop(self, grace_s: float) -> None:
        await self.pool.stop(grace_s)

    @property
    def _poll_budget_s(self) -> float:
        """How long a poll's upstream requests may take together: 3/4 of the lease,
        leaving the rest for the write that ends the poll."""
        return 0.75 * self._settings.lease

    @property
    def _horizon_s(self) -> float:
        # Slots are reserved up to a little more than two ticks ahead: the next claim
        # comes before they run out, so a source's whole budget is used.
        return 2 * self._settings.tick + 0.1

    async def _claim(self, free: int) -> list[Claimed]:
        room = worker_room(
            self._settings.concurrency, self._settings.source_concurrency, self._sources, self._held
        )
        # before the claim: its leases were granted after this, so a lease's end is never
        # taken as later than it is (each slot counts from its own script: granted_at)
        at = time.monotonic()
        claimed = await self._store.claim(
            self._clock.now(),
            self._settings.lease,
            free,
            self._rate_limits,
            self._horizon_s,
            room=room,
        )
        for c in claimed:
            self._held[c.watch.source] = self._held.get(c.watch.source, 0) + 1
        held_until = at + self._settings.lease - WRITE_RETRY_MAX_S
        return [
            replace(
                c,
                slot_at=(at if c.granted_at is None else c.granted_at) + c.delay_s,
                held_until=held_until,
            )
            for c in claimed
        ]

    def _release(self, claimed: Claimed) -> None:
        source = claimed.watch.source
        left = self._held.get(source, 0) - 1
        if left > 0:
            self._held[source] = left
        else:
            self._held.pop(source, None)

    async def _poll_held(self, claimed: Claimed) -> Verdict:
        try:
            if not self._tracing.enabled:
                return await self.poll(claimed)
            w = claimed.watch
            with self._tracing.poll(w.source, w.id, w.job_id) as span:
                verdict = await self.poll(claimed)
                span.set("bridge.verdict", verdict.value)
                return verdict
        finally:
            self._release(claimed)

    async def _hand_back_held(self, claimed: Claimed) -> None:
        try:
            await self._hand_back(claimed)
        finally:
            self._release(claimed)

    async def _before_send(self, source: PolledSource, claimed: Claimed, retry: bool) -> None:
        """The last word before a request (and before any token request it needs). A
        retry takes a slot of its own. A first request reserved ahead checks the 429
        pause again; any first request that starts later after its slot than the
        source's burst allows (the pool was busy; ratelimit.late_allowance_s) takes a
        fresh one, which checks the pause too: late requests must not go out back to
        back. NoSlot: not sent."""
        allowance = late_allowance_s(source.rate_limit, source.burst)

        def late() -> bool:
            return claimed.slot_at is not None and time.monotonic() - claimed.slot_at > allowance

        if not retry and not late() and claimed.delay_s > 0:
            paused = await self._store.sources.pause_left(source.name)
            if paused > 0:  # a 429 arrived meanwhile: the slot is not used
                raise NoSlot("the source was paused meanwhile", retry_after_s=paused, paused=True)
        if retry or late():  # (asked again: the pause check takes a round trip)
            # rate 0 still asks: the script checks the pause before the limit
            delay = await self._store.sources.acquire(
                source.name, source.rate_limit, limiter_burst(source.burst), self._horizon_s
            )
            if delay > 0:
                await asyncio.sleep(delay)
        self._metrics.tally.sent(source.name)  # the request goes out now

    async def _wrote_before(self, claimed: Claimed, event: Event) -> bool:
        """Whether this lease's own earlier try wrote the terminal step (its answer was
        lost to a timeout): the watch ended with this event, under this lease's token."""
        stored = await self._store.get_watch(claimed.watch.id)
        return (
            stored is not None
            and stored.lease == claimed.token
            and await self._store.events.get_event(event.id) is not None
        )

    async def _reschedule(self, claimed: Claimed, *args: Any, **kwargs: Any) -> Verdict:
        return await self._kept(claimed, lambda: self._store.reschedule(claimed, *args, **kwargs))

    async def _kept(self, claimed: Claimed, write: Callable[[], Awaitable[Verdict]]) -> Verdict:
        """The write that ends a poll, tried again while Redis refuses it and the lease
        lasts (each try is compare-and-set on the lease: once is all it can do). The
        outage is said once; past the lease it is raised, and the lease expires."""
        wait = WRITE_RETRY_FIRST_S
        while True:
            try:
                verdict = await write()
            except Exception as exc:
                if not isinstance(exc, StoreOutage) or claimed.held_until is None:
                    raise
                if claimed.held_until - time.monotonic() <= wait:
                    raise
                self._outage.failed("poller", exc)
                await asyncio.sleep(wait)
                wait = min(WRITE_RETRY_MAX_S, 2 * wait)
            else:
                if verdict in (Verdict.OK, Verdict.TERMINAL):  # written: Redis takes writes
                    self._outage.wrote()
                return verdict

    async def _hand_back(self, claimed: Claimed) -> None:
        await self._reschedule(claimed, claimed.watch, self._clock.now(), keep_priority=True)

    # --------------------------------------------------------------- one poll
    async def poll(self, claimed: Claimed) -> Verdict:
        """Poll one claimed watch and record what happened; returns the store's verdict."""
        watch = claimed.watch
        now = self._clock.now()
        source = self._sources.get(watch.source)
        # A job seen FAILED whose errors page is awaited has ended: not expired, as long
        # as that wait lasts (a poll that keeps failing meanwhile must not keep it open)
        waiting = watch.waiting_since is not None and now - watch.waiting_since < ERRORS_WAIT_S
        if source is None and watch.source in self._deleted:  # deleted through the API
            await self._store.delete_watch(watch, self._settings.retention)
            log.info("watch_dropped", watch_id=watch.id, source=watch.source,
                     reason="its source was deleted")  # fmt: skip
            return Verdict.OK
        if now - watch.created_at >= self._settings.max_age and not waiting:
            return await self._finish(claimed, watch, Outcome.EXPIRED, None, now)
        if source is None:  # removed from the config: keep the watch, look again later
            updated = replace(watch, last_error=f"source {watch.source!r} is not configured")
            return await self._reschedule(claimed, updated, now + self._settings.max_interval)

        # The claim reserved this request a slot of the source's fleet-wide budget; the
        # pool started it no earlier than that slot.
        started = time.perf_counter()
        sent: list[bool] = []  # requests let out (False: the first, True: a retry)

        async def before_send(retry: bool) -> None:
            await self._before_send(source, claimed, retry)
            sent.append(retry)

        try:
            # Token requests, the status and a retry after a 401 each have their own
            # timeout; together they must end well within the lease, or another replica
            # would take the watch back while this poll still runs.
            async with asyncio.timeout(self._poll_budget_s):
                snapshot = await fetch_snapshot(
                    source.provider, self._http, watch.kind, watch.job_id, now, before_send
                )
        except TimeoutError:
            exc_text = f"the poll took longer than {self._poll_budget_s:g} s (poll.lease allows)"
            self._count(source, "error", started)
            log.info("poll_failed", watch_id=watch.id, source=source.name, error=exc_text)
            return await self._retry_later(claimed, watch.polled(now, "error"), exc_text)
        except NoSlot as exc:  # not sent: paused meanwhile, or no slot for the retry soon
            updated = watch
            if sent:  # the first request did go out (and got a 401): it counts
                self._count(source, "auth_error", started)
                updated = watch.polled(now, "error")
            reason = "paused" if exc.paused else "rate_limited"
            next_at = self._clock.now() + exc.retry_after_s
            next_at += self._rand() * self._settings.min_interval
            return await self._reschedule(
                claimed,
                replace(updated, poll_reason=reason),
                next_at,
                keep_priority=not sent,  # not polled: it keeps its place
            )
        except RateLimitedError as exc:
            return await self._rate_limited(claimed, watch.polled(now, "error"), source, exc)
        except NotFoundError as exc:
            return await self._not_found(claimed, watch.polled(now, "error"), source, str(exc))
        except AuthError as exc:
            self._count(source, "auth_error", started)
            refusals = self._refusals.get(source.name, health.Refusals())
            refusals, unhealthy = health.after_refusal(
                refusals, watch.id, credentials=exc.credentials
            )
            self._refusals[source.name] = refusals
            if unhealthy:
                await self._set_health(source.name, False, str(exc))
            return await self._retry_later(claimed, watch.polled(now, "error"), str(exc))
        except TransientUpstreamError as exc:
            self._count(source, "error", started)
            log.info("poll_failed", watch_id=watch.id, source=source.name, error=str(exc))
            return await self._retry_later(claimed, watch.polled(now, "error"), str(exc))
        except Exception as exc:  # an answer nobody foresaw: an error, never silence
            if isinstance(exc, StoreOutage):  # the token cache is in Redis, not upstream
                self._outage.failed("poller", exc)
                later = self._clock.now() + self._settings.min_interval
                return await self._reschedule(claimed, watch, later, keep_priority=True)
            self._count(source, "error", started)
            error = f"unexpected answer: {failure_name(exc)}"
            log.warning("poll_failed", watch_id=watch.id, source=source.name, error=error)
            return await self._retry_later(claimed, watch.polled(now, "error"), error)
        self._count(source, "ok", started)
        self._refusals.pop(source.name, None)
        try:
            await self._set_health(source.name, True, None)
        except Exception as exc:  # Redis takes no writes: tried again at the next poll
            if not isinstance(exc, StoreOutage):
                raise
            self._outage.failed("poller", exc)
        # the body kept in the watch (rewritten at every poll) and carried by its event
        # is bounded once, here: a 900 KB answer is a short note, not 900 KB a poll
        kept = bounded_job(snapshot.raw, self._settings.max_job_bytes)
        if kept is not snapshot.raw:
            snapshot = replace(snapshot, raw=kept)
        return await self._record(claimed, snapshot, now)

    async def _record(self, claimed: Claimed, snap: JobSnapshot, now: float) -> Verdict:
        """A good answer: finish the watch, or save it and pick the next poll time."""
        w = claimed.watch
        extra: dict[str, Any] | None = None
        source = self._sources.get(w.source)
        details = source.provider if source is not None else None
        if (
            snap.outcome is Outcome.FAILED
            and isinstance(details, FailureDetails)
            and details.wants_failure_details
        ):
            assert source is not None
            sample = await self._errors_sample(source, details, w)
            if sample is None:  # still being prepared: look again soon, not for ever
                since = w.waiting_since if w.waiting_since is not None else now
                if now - since < ERRORS_WAIT_S:
                    waiting = w.polled(  # the status stays: the event's previous_status
                        now,
                        f"{snap.status}, errors not ready",
                        counts=snap.counts,
                        snapshot=snap.raw,
                        waiting_since=since,
                        poll_reason="backoff",
                    )
                    # a growing wait: a long preparation costs few requests
                    next_at = now + max(self._settings.min_interval, (now - since) / 4)
                    return await self._reschedule(claimed, waiting, next_at)
                sample = {"unavailable": f"not ready after {ERRORS_WAIT_S:g} s"}
            extra = {"errors_sample": sample}
        if snap.outcome is not None:
            updated = w.answered(now, snap)
            return await self._finish(claimed, updated, snap.outcome, snap, now, extra)
        if self._progress is not None and source is not None:
            # written before the poll is saved: a retry after a crash names it the same
            try:
                w = await self._progress.note(w, snap, source.provider.name, self._clock)
            except Exception as exc:  # Redis takes no writes: the next poll notes it
                if not isinstance(exc, StoreOutage):
                    raise
                self._outage.failed("poller", exc)
            if w.progress_events != claimed.watch.progress_events:
                self._on_event()
        progress, eta, overdue = backoff.read_progress(
            w.progress,
            now=now,
            created_at=w.created_at,
            total=snap.counts.total,
            done=snap.counts.processed,
        )
        age = now - w.created_at
        durations = None
        if eta is None and self._durations is not None:
            durations = await self._durations.load(w.source, w.kind)
        interval, reason = backoff.next_interval(
            age_s=age,
            lag_target=self._settings.lag_target,
            min_s=self._settings.min_interval,
            max_s=self._settings.max_interval,
            eta_s=eta,
            overdue_s=overdue,
            learned_s=learned_interval(durations, age),
        )
        worth = priority.poll_worth(age_s=age, interval_s=interval, eta_s=eta, durations=durations)
        # The hot path: one copy of the watch per poll (dataclasses.replace is not cheap).
        updated = w.answered(
            now,
            snap,
            progress=progress,
            poll_reason=reason,
            interval_s=interval,
            next_poll_at=now + interval,
        )
        # Worth decides who goes first when the budget is short; no poll is passed over
        # for longer than max_interval (poll/priority.py).
        rank = priority.priority_key(now + interval, worth, self._settings.max_interval)
        return await self._reschedule(claimed, updated, now + interval, rank)

    async def _finish(
        self,
        claimed: Claimed,
        updated: Watch,
        outcome: Outcome,
        snap: JobSnapshot | None,
        now: float,
        extra: dict[str, Any] | None = None,
    ) -> Verdict:
        source = self._sources.get(updated.source)
        event = outcome_event(
            watch=updated,
            provider=source.provider.name if source else "unknown",
            outcome=outcome,
            previous_status=claimed.watch.status,
            detected_at=now,
            snapshot=snap,
            extra=extra,
            max_job_bytes=self._settings.max_job_bytes,
        )
        if self._tracing.enabled:  # its deliveries continue this poll's trace
            self._tracing.note("bridge.outcome", outcome.value)
            self._tracing.note("bridge.status", snap.status if snap else None)
            event = replace(event, trace=self._tracing.traceparent())
        final = updated.ended(outcome, now)
        tries = 0

        async def write() -> Verdict:
            nonlocal tries
            tries += 1
            return await self._store.finish(claimed, final, event, self._settings.retention)

        verdict = await self._kept(claimed, write)
        if verdict is Verdict.FINISHED and tries > 1 and await self._wrote_before(claimed, event):
            verdict = Verdict.TERMINAL  # an earlier try went through; only its answer was lost
        if verdict is Verdict.TERMINAL:
            if job_omitted(event):
                log.warning(
                    "event_job_omitted",
                    watch_id=updated.id,
                    source=updated.source,
                    max_bytes=self._settings.max_job_bytes,
                )
                self._metrics.guarded.labels("event_job_omitted").inc()
            self._on_event()
            self._metrics.events.labels(event.type).inc()
            self._metrics.requests_per_job.labels(updated.source).observe(updated.polls)
            finished = parse_time(snap.finished_at) if snap else None
            await self._learn_duration(claimed.watch, outcome, finished, now)
            if finished is not None:
                self._metrics.time_to_notice.labels(updated.source).observe(
                    max(0.0, now - finished)
                )
                self._metrics.tally.noticed(max(0.0, now - finished))
            log.info(
                "watch_finished",
                watch_id=updated.id,
                source=updated.source,
                job_id=updated.job_id,
                outcome=outcome.value,
                event_id=event.id,
            )
        return verdict

    async def _errors_sample(
        self, source: PolledSource, provider: FailureDetails, watch: Watch
    ) -> dict[str, Any] | None:
        """The failed items of a failed job, bounded; None while the upstream still
        prepares them (202), or no slot or answer came now (looked at again)."""
        # after the status poll's budget (3/4 of the lease): slot and request together
        # within a fifth of it, so the poll ends inside its lease
        within_s = 0.2 * self._settings.lease
        try:
            async with asyncio.timeout(within_s):
                delay = await self._store.sources.acquire(
                    source.name,
                    source.rate_limit,
                    limiter_burst(source.burst),
                    min(outside_claim_wait_s(source.rate_limit), within_s / 2),
                )
                if delay > 0:
                    await asyncio.sleep(delay)
                self._metrics.tally.sent(source.name)
                answer = await self._http.request(
                    "GET",
                    provider.failure_details_url(watch.kind, watch.job_id),
                    headers=await source.provider.auth_headers(),
                )
        except (NoSlot, TransientUpstreamError, TimeoutError):
            return None
        if answer.status == 202:
            return None
        if answer.status == 429:  # the whole source waits, as for a status poll
            exc = classify(answer, self._clock.now())
            if isinstance(exc, RateLimitedError):
                await self._store.sources.pause(source.name, exc.retry_after_s)
                log.warning("source_paused", source=source.name, retry_after_s=exc.retry_after_s)
            return None
        if not 200 <= answer.status < 300:
            return {"unavailable": f"HTTP {answer.status}"}
        try:
            return provider.failure_details(decode_json(answer.body))
        except TransientUpstreamError as exc:
            return {"unavailable": str(exc)}

    async def _learn_duration(
        self, before: Watch, outcome: Outcome, finished: float | None, now: float
    ) -> None:
        """A job seen running and then ending upstream: its duration since registration
        (the age the policy uses), by the upstream's own finished time where it gives one.
        A job found already finished tells nothing about durations."""
        if self._durations is None or before.status is None or outcome in _NOT_ENDED_UPSTREAM:
            return  # never seen running (only errors, or finished at its first answer)
        ended = now if finished is None else min(now, finished)
        if ended < before.created_at:  # ended before it was registered, or clocks differ
            return
        try:
            await self._durations.record(before.source, before.kind, ended - before.created_at)
        except Exception as exc:  # the event is written; a lost sample is no loss
            if not isinstance(exc, StoreOutage):
                raise
            log.info("duration_not_recorded", watch_id=before.id)

    async def _rate_limited(
        self, claimed: Claimed, polled: Watch, source: PolledSource, exc: RateLimitedError
    ) -> Verdict:
        self._metrics.polls.labels(source.name, "rate_limited").inc()
        await self._store.sources.pause(source.name, exc.retry_after_s)
        log.warning("source_paused", source=source.name, retry_after_s=exc.retry_after_s)
        now = self._clock.now()
        next_at = now + exc.retry_after_s + self._rand() * self._settings.min_interval
        updated = replace(polled, last_error=str(exc), poll_reason="rate_limited")
        return await self._reschedule(claimed, updated, next_at)

    async def _not_found(
        self, claimed: Claimed, polled: Watch, source: PolledSource, error: str
    ) -> Verdict:
        self._metrics.polls.labels(source.name, "not_found").inc()
        updated = polled.missing(error)
        if updated.not_found >= self._settings.not_found_polls:
            return await self._finish(claimed, updated, Outcome.NOT_FOUND, None, self._clock.now())
        # Confirm soon: a fresh job can briefly 404 while the upstream catches up.
        delay = backoff.error_backoff(
            updated.not_found,
            self._settings.min_interval,
            self._settings.max_interval,
            self._rand(),
        )
        return await self._reschedule(claimed, updated, self._clock.now() + delay)

    async def _retry_later(self, claimed: Claimed, polled: Watch, error: str) -> Verdict:
        updated = polled.failed(error)
        delay = backoff.error_backoff(
            updated.errors, self._settings.min_interval, self._settings.max_interval, self._rand()
        )
        return await self._reschedule(claimed, updated, self._clock.now() + delay)

    def _count(self, source: PolledSource, result: str, started: float) -> None:
        # Labelled children are looked up once: .labels() is measurable on the hot path.
        key = (source.name, result)
        children = self._metric_children.get(key)
        if children is None:
            children = (
                self._metrics.polls.labels(source.name, result),
                self._metrics.poll_seconds.labels(source.name),
            )
            self._metric_children[key] = children
        children[0].inc()
        children[1].observe(time.perf_counter() - started)

    def fleet_health(self, source: str, healthy: bool) -> None:
        """The source's health as Redis has it (another replica may have changed it):
        this process then writes a change it sees against that, not against its own
        last write, so a recovery seen here is told even if another replica marked the
        source unhealthy."""
        self._health[source] = healthy

    async def _set_health(self, source: str, healthy: bool, reason: str | None) -> None:
        """Write health to Redis only when this process sees it change; the replica whose
        write changes it fleet-wide also writes the source.* event, in the same step."""
        if self._health.get(source, True) == healthy:
            return
        now = self._clock.now()
        event = source_event(
            source=source,
            provider=self._sources[source].provider.name if source in self._sources else "",
            healthy=healthy,
            reason=reason,
            now=now,
        )
        changed = await self._store.sources.set_health(
            source, healthy, reason, now, event, self._settings.retention
        )
        # Only once written: a failed write is tried again at the next poll.
        self._health[source] = healthy
        self._metrics.source_healthy.labels(source).set(1 if healthy else 0)
        if changed:
            self._on_event()
            self._metrics.events.labels(event.type).inc()
            log.warning(
                "source_recovered" if healthy else "source_unhealthy", source=source, reason=reason
            )


def reserve_per_source(concurrency: int, sources: int) -> int:
    """Workers kept free for each source while it has fewer in use: half a fair share."""
    return max(1, concurrency // (2 * max(1, sources)))


class Allowance(Mapping[str, int]):
    """Per source: `each` less what it holds, never below zero; computed when asked (a
    claim among thousands of sources asks of a few)."""

    def __init__(self, sources: Collection[str], each: int, held: Mapping[str, int]) -> None:
        self._sources = sources
        self._each = each
        self._held = held

    def __getitem__(self, source: str) -> int:
        if source not in self._sources:
            raise KeyError(source)
        return max(0, self._each - self._held.get(source, 0))

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


def worker_room(
    concurrency: int, configured: int, sources: Collection[str], held: Mapping[str, int]
) -> WorkerRoom:
    """What the next claim may take, per source. Pure.

    Any source may use every worker but those kept free for the other sources
    (reserve_per_source each, less what they already hold): a busy source alone has
    most of the pool, and one that hangs cannot take the workers another source needs
    to be polled on time. configured (poll.source_concurrency), when set, caps each
    source's polls as well. Costs what the held sources number, not all sources."""
    held = dict(held)  # as it is now: polls end while the claim runs
    reserve = reserve_per_source(concurrency, len(sources))
    in_use = [n for s, n in held.items() if s in sources]
    kept = len(sources) * reserve - sum(min(reserve, n) for n in in_use)
    return WorkerRoom(
        own=Allowance(sources, reserve, held),
        shared=max(0, concurrency - sum(in_use) - kept),
        most=Allowance(sources, configured, held) if configured > 0 else None,
    )


def parse_time(text: str | None) -> float | None:
    """An upstream's ISO 8601 time as unix seconds; None when absent or unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else None
