"""The deliverer: turns outbox entries into deliveries and attempts them.

Fan-out: outbox entries are read through a Redis consumer group; each becomes one
delivery per matching subscription, created and acked in one script (idempotent
ids). Attempts: deliveries are claimed with leases longer than the request
timeout, so a process killed mid-request loses nothing — its lease expires and any
replica sends again with the same webhook-id.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

import structlog

from bridge.clock import Clock
from bridge.delivery import policy
from bridge.delivery.request import webhook_request
from bridge.delivery.sender import Sender, SendResult
from bridge.events import disabled_event
from bridge.metrics import Metrics
from bridge.model import Attempt, Delivery, DeliveryStatus, Event, Subscription
from bridge.outage import OutageLog
from bridge.settings import DeliverySettings
from bridge.store.deliveries import (
    ClaimedDelivery,
    DeliveryStore,
    OutboxGroupMissing,
    delivery_id,
    fanout_mode,
    progress_channel,
)
from bridge.store.verdicts import Verdict
from bridge.tracing import Tracing
from bridge.workers import WorkerPool, cancel_within

log = structlog.get_logger("bridge.delivery")

GAUGE_EVERY_S = 1.0  # the queue-depth gauge costs a round trip: refresh it this often


# A subscription whose secrets this replica cannot open (a key another one seals
# with): its deliveries wait this long, for a replica that can, or for the key.
UNREADABLE_WAIT_S = 60.0


def deliveries_for(event: Event, subs: list[Subscription], now: float) -> list[Delivery]:
    """One delivery per subscription that wants this event (disabled ones too: they
    are kept, parked, until the subscription is enabled again)."""
    source = event.data.get("source")
    metadata = event.data.get("metadata")
    detected_at = _detected(event, now)  # once per event, not once per subscription
    progress = event.type == "import.progress" and event.watch_id
    return [
        Delivery(
            # a job's progress events share one delivery per subscriber: its channel
            id=progress_channel(event.watch_id, sub.id)
            if progress
            else delivery_id(event.id, sub.id),
            event_id=event.id,
            subscription_id=sub.id,
            status=DeliveryStatus.PENDING,
            created_at=now,
            detected_at=detected_at,
            next_attempt_at=now,
        )
        for sub in subs
        if sub.matches(
            event.type,
            source if isinstance(source, str) else None,
            metadata if isinstance(metadata, dict) else None,
        )
        and not (
            event.type == "subscription.disabled" and event.data.get("subscription_id") == sub.id
        )
    ]


def lag_kind(d: Delivery) -> str:
    """first: an event's own delivery (what the lag is about); replay; ping."""
    if d.event_id.startswith("evt_ping_"):
        return "ping"
    if d.event_id.startswith("evt_progress_"):
        return "progress"
    return "first" if d.id == delivery_id(d.event_id, d.subscription_id) else "replay"


def _detected(event: Event, fallback: float) -> float:
    try:
        return datetime.fromisoformat(event.timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return fallback


class Deliverer:
    def __init__(
        self,
        *,
        store: DeliveryStore,
        sender: Sender,
        settings: DeliverySettings,
        clock: Clock,
        metrics: Metrics,
        rand: Callable[[], float] = random.random,
        outage: OutageLog | None = None,
        on_data_lost: Callable[[], Awaitable[None]] | None = None,
        wall: Clock | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._store = store
        self._tracing = tracing or Tracing()
        # webhook-timestamp is this host's wall clock, as receivers compare it with theirs
        self._wall = wall or clock
        # Redis lost the outbox group: rebuild (static subscriptions first) before reading
        self._on_data_lost = on_data_lost or store.ensure_group
        self._sender = sender
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._rand = rand
        self._consumer = f"{socket.gethostname()}-{id(self):x}"
        self._schedule = tuple(settings.retry_schedule)
        self._lease_s = settings.timeout + settings.lease_margin
        self._slots: dict[str, SubscriptionSlots] = {}
        # A worker waits this long for a subscription's free slot, holding the lease
        # (timeout + margin), so the wait and the request always fit inside it.
        self._slot_wait_s = settings.lease_margin / 2
        # At most a quarter of the workers wait for slots; the rest keep delivering.
        self._wait_budget = WaitBudget(max(1, settings.concurrency // 4))
        self._stop_event = asyncio.Event()
        self._outage = outage or OutageLog()
        self._subs: dict[str, Subscription] = {}
        self._subs_version = -1
        self._gauge_due = 0.0
        self._outcomes = {v: metrics.deliveries.labels(v.value) for v in policy.Verdict}
        self._fan_out_wake = asyncio.Event()
        self._fan_out_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.pool: WorkerPool[ClaimedDelivery] = WorkerPool(
            "deliverer",
            settings.concurrency,
            claim=self._claim,
            handle=self._attempt_recorded,
            hand_back=self._hand_back,
            outage=self._outage,
        )

    async def _attempt_recorded(self, claimed: ClaimedDelivery) -> Verdict:
        verdict = await self.attempt(claimed)
        if verdict is Verdict.OK:  # the attempt's record was written: Redis takes writes
            self._outage.wrote()
        return verdict

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        await self._store.ensure_group()
        await self.refresh_subscriptions()
        self.pool.start()
        self._fan_out_task = asyncio.create_task(self._fan_out_loop(), name="deliverer-fan-out")
        self._fan_out_wake.set()

    def wake(self) -> None:
        self.pool.wake()

    @property
    def running(self) -> bool:
        return (
            self.pool.running and self._fan_out_task is not None and not self._fan_out_task.done()
        )

    def begin_stop(self) -> None:
        """From now on: no fan-out, no claim, no request started."""
        self._stopping = True
        self._stop_event.set()  # workers waiting for a slot hand their delivery back
        self._fan_out_wake.set()
        self.pool.begin_stop()

    async def stop(self, grace_s: float) -> None:
        """Claimed but unstarted deliveries are handed back; work in flight gets grace_s."""
        self.begin_stop()
        if self._fan_out_task:
            await cancel_within([self._fan_out_task], min(grace_s, 1.0), "deliverer-fan-out")
        await self.pool.stop(grace_s)
        with contextlib.suppress(Exception):  # a consumer per process start would pile up
            await asyncio.wait_for(self._store.drop_consumer(self._consumer), 1.0)

    async def _send(
        self, url: str, body: bytes, headers: dict[str, str], event: Event, delivery_id: str
    ) -> SendResult:
        """The request; with tracing, in a span that continues the trace of the poll that
        made the event, and whose traceparent the receiver gets."""
        if not self._tracing.enabled:
            return await self._sender.send(url, body, headers)
        host = urlsplit(url).hostname or ""
        with self._tracing.delivery(event.trace, event.type, delivery_id, host) as span:
            parent = self._tracing.traceparent()
            if parent:  # custom headers cannot name it (headers.RESERVED)
                headers["traceparent"] = parent
            result = await self._sender.send(url, body, headers)
            span.set("http.response.status_code", result.status)
            if result.status is None or not 200 <= result.status < 300:
                span.failed(result.error or f"HTTP {result.status}")
            return result

    async def _claim(self, free: int) -> list[ClaimedDelivery]:
        claimed, version = await self._store.claim_versioned(
            self._clock.now(), self._lease_s, free, self._settings.retention
        )
        if version != self._subs_version:  # a subscription changed: attempt with it as it is
            await self.refresh_subscriptions()
        return claimed

    async def _hand_back(self, claimed: ClaimedDelivery) -> None:
        """Claimed, never attempted: due again now, for any replica."""
        later = claimed.delivery.later(self._clock.now())
        await self._store.record(claimed, later, self._settings.retention)

    def forget_subscriptions(self) -> None:
        """Reload the subscriptions before the next fan-out (Redis lost them, say)."""
        self._subs_version = -1
        self._fan_out_wake.set()

    async def tick(self) -> None:
        """The ticker's beat, kept cheap: wake the fan-out loop and the workers."""
        self.event_written()

    def event_written(self) -> None:
        """Fan out now (an event was just written by this process, or the tick came)."""
        self._fan_out_wake.set()
        self.wake()

    async def _fan_out_loop(self) -> None:
        # The flag, not only the cancellation, ends the loop: on Python 3.11 a cancel
        # that lands as redis-py's asyncio.wait_for-wrapped send completes is lost
        # (fixed in 3.12), and the loop then waited here forever.
        while not self._stopping:
            await self._fan_out_wake.wait()
            self._fan_out_wake.clear()
            if self._stopping:
                return
            try:
                await self.fan_out()
                if time.monotonic() >= self._gauge_due:
                    self._gauge_due = time.monotonic() + GAUGE_EVERY_S
                    self._metrics.delivery_queue.set(await self._store.queue_depth())
            except Exception as exc:  # Redis down: the next tick tries again
                self._outage.failed("deliverer-fan-out", exc)
            else:
                self._outage.succeeded()

    async def refresh_subscriptions(self) -> None:
        self._subs_version, subs = await self._store.versioned_subscriptions()
        self._subs = {s.id: s for s in subs}

    async def fan_out(self) -> int:
        """Outbox entries → deliveries. Returns how many deliveries were created."""
        created = 0
        while True:
            try:
                entries, version = await self._store.read_outbox(self._consumer, 100, self._lease_s)
            except OutboxGroupMissing:
                await self._on_data_lost()
                self._subs_version = -1
                continue
            if version != self._subs_version:  # changed since the cache was read
                await self.refresh_subscriptions()
            if not entries:
                return created
            subs = list(self._subs.values())
            now = self._clock.now()
            events = await self._store.get_events([e.event_id for e in entries])
            batch = [
                (entry.entry_id, deliveries_for(event, subs, now) if event else [])
                for entry, event in zip(entries, events, strict=True)
            ]
            modes = {
                d.id: fanout_mode(event, d.subscription_id)
                for (_, deliveries), event in zip(batch, events, strict=True)
                if event is not None
                for d in deliveries
            }
            created += await self._store.fan_out_many(batch, now, modes)
            if created:
                self.wake()
            if len(entries) < 100:
                return created

    # ------------------------------------------------------------ one attempt
    async def attempt(self, claimed: ClaimedDelivery) -> Verdict:
        d = claimed.delivery
        now = self._clock.now()
        retention = self._settings.retention
        sub = self._subs.get(d.subscription_id) or await self._store.get_subscription(
            d.subscription_id
        )
        if sub is not None and sub.id in self._store.unreadable:  # a key missing here
            return await self._store.record(claimed, d.later(now + UNREADABLE_WAIT_S), retention)
        if sub is None:
            self._metrics.dead.inc()
            return await self._store.record(
                claimed, d.given_up(now, "subscription deleted"), retention
            )
        if not sub.enabled:  # the cache may be a tick old: ask Redis before parking
            sub = await self._store.get_subscription(d.subscription_id) or sub
            self._subs[sub.id] = sub
        if not sub.enabled:  # kept until the subscription is enabled again
            return await self._store.record(claimed, d, retention, park=True)
        event = claimed.event
        if event is None:
            self._metrics.dead.inc()
            return await self._store.record(claimed, d.given_up(now, "event expired"), retention)

        body, headers = webhook_request(sub, event, now, int(self._wall.now()))
        slots = self._slots.get(sub.id)
        if slots is None:
            slots = self._slots[sub.id] = SubscriptionSlots(
                self._settings.per_subscription_concurrency, self._wait_budget
            )
        if not await slots.take(self._slot_wait_s, self._stop_event):
            if self._stopping:
                await self._hand_back(claimed)
                return Verdict.HANDED_BACK
            # At its cap with enough waiters already: look again in about one timeout,
            # not every few hundred milliseconds (that only loads Redis).
            later = d.later(now + self._settings.timeout * (0.5 + self._rand()))
            return await self._store.record(claimed, later, retention)
        try:
            if self._stopping:  # shutting down: no request starts now
                await self._hand_back(claimed)
                return Verdict.HANDED_BACK
            result = await self._send(sub.url, body, headers, event, d.id)
        except Exception as exc:  # whatever the failure, it is a failed attempt, retried
            result = SendResult(None, 0.0, error=f"request failed: {type(exc).__name__}")
        finally:
            slots.release()
        done = self._clock.now()
        self._metrics.delivery_seconds.observe(result.latency_s)
        attempt = Attempt(
            done, result.status, round(result.latency_s, 4), result.error, result.snippet
        )
        decision = policy.decide(
            status=result.status,
            failures_before=d.failures,
            schedule=self._schedule,
            retry_after_s=result.retry_after_s,
            retry_after_cap_s=self._settings.retry_after_cap,
            rand=self._rand(),
        )
        self._outcomes[decision.verdict].inc()
        self._metrics.tally.delivered(decision.verdict.value)
        log_ctx = {
            "delivery_id": d.id,
            "subscription_id": sub.id,
            "event_id": d.event_id,
            "status": result.status,
            "error": result.error,
        }
        if decision.verdict is policy.Verdict.SUCCEEDED:
            self._metrics.delivery_lag.labels(lag_kind(d)).observe(max(0.0, done - d.detected_at))
            if sub.failing_since is not None:
                await self._store.set_state(sub.id, clear_failing=True)
                self._subs[sub.id] = replace(sub, failing_since=None)
            return await self._store.record(claimed, d.succeeded(attempt), retention)
        if decision.verdict is policy.Verdict.GONE:
            log.warning("subscription_gone", **log_ctx)
            await self.disable(sub, "the receiver answered 410 Gone", done)
            kept = d.failed(attempt, retry_at=done)  # parked until enabled again
            return await self._store.record(claimed, kept, retention, park=True)
        if decision.verdict is policy.Verdict.DEAD:
            log.warning("delivery_dead", **log_ctx)
            self._metrics.dead.inc()
            return await self._store.record(claimed, d.dead(attempt), retention)
        log.info("delivery_failed", **log_ctx)
        failing_since = sub.failing_since
        if failing_since is None:
            failing_since = await self._store.mark_failing(sub.id, done)
            self._subs[sub.id] = sub = replace(sub, failing_since=failing_since)
        retry = d.failed(attempt, retry_at=done + (decision.delay_s or 0))
        if done - failing_since >= self._settings.disable_after:
            await self.disable(sub, "failing continuously", done)
            return await self._store.record(claimed, retry, retention, park=True)
        return await self._store.record(claimed, retry, retention)

    async def disable(self, sub: Subscription, reason: str, now: float) -> None:
        """Disable and tell the other subscribers (subscription.disabled)."""
        await self._store.set_state(sub.id, enabled=False, disabled_reason=reason)
        self._subs[sub.id] = replace(sub, enabled=False, disabled_reason=reason)
        event = disabled_event(subscription_id=sub.id, url=sub.url, reason=reason, now=now)
        with contextlib.suppress(Exception):
            await self._store.emit(event, now, self._settings.retention)
        log.warning("subscription_disabled", subscription_id=sub.id, reason=reason)


class SubscriptionSlots:
    """A subscription's in-flight cap. Workers wait in memory for a free slot rather
    than going back to Redis: at most `cap` per subscription, and only while the
    pool-wide waiting budget lasts, so slow receivers cannot hold every worker."""

    def __init__(self, cap: int, budget: WaitBudget) -> None:
        self._cap = cap
        self._budget = budget
        self._free = asyncio.Semaphore(cap)
        self._waiting = 0

    async def take(self, wait_s: float, stop: asyncio.Event) -> bool:
        if not self._free.locked():
            await self._free.acquire()
            return True
        if self._waiting >= self._cap or not self._budget.take():
            return False
        self._waiting += 1
        acquire = asyncio.ensure_future(self._free.acquire())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({acquire, stopped}, timeout=wait_s, return_when=FIRST_COMPLETED)
        finally:
            self._waiting -= 1
            self._budget.release()
            stopped.cancel()
            if not acquire.done():
                acquire.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acquire
        return not acquire.cancelled()  # acquired, even if just as it was given up

    def release(self) -> None:
        self._free.release()


class WaitBudget:
    """How many workers of the pool may wait for a subscription's slot at once."""

    def __init__(self, size: int) -> None:
        self._left = size

    def take(self) -> bool:
        if self._left <= 0:
            return False
        self._left -= 1
        return True

    def release(self) -> None:
        self._left += 1
