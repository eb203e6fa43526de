"""import.progress events: when a running job's move is worth telling, and writing them.

The decision is a pure function; the writer asks Redis only every few seconds whether
any subscription wants progress at all, so nobody pays for events no one reads.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from bridge.clock import Clock
from bridge.events import progress_event
from bridge.model import JobSnapshot, Watch
from bridge.store.deliveries import DeliveryStore

# How long the answer to "does anyone subscribe to import.progress?" is reused.
WANTED_CACHE_S = 5.0


def progress_due(
    *,
    previous_status: str | None,
    status: str,
    done: int | None,
    total: int | None,
    last_step: int,
    last_at: float | None,
    now: float,
    step: float,
    min_interval_s: float,
) -> int | None:
    """The step to announce now, or None. A status change is always announced; a count
    only when the done share crossed into a new step (every `step` of the total), and no
    sooner than min_interval_s after the last announcement. A step is never announced
    twice; -1 stands for "no counts yet"."""
    current = -1
    if total and done is not None and total > 0:
        current = math.floor(min(1.0, max(0.0, done / total)) / step + 1e-9)
    if previous_status is not None and status != previous_status:
        return max(current, last_step)
    if (
        current >= 1
        and current > last_step
        and (last_at is None or now - last_at >= min_interval_s)
    ):
        return current
    return None


class ProgressEvents:
    def __init__(
        self, deliveries: DeliveryStore, *, step: float, min_interval_s: float, retention_s: float
    ) -> None:
        self._deliveries = deliveries
        self._step = step
        self._min_interval_s = min_interval_s
        self._retention_s = retention_s
        self._wanted = False
        self._checked_at = -math.inf

    async def wanted(self) -> bool:
        if time.monotonic() - self._checked_at > WANTED_CACHE_S:
            subs = await self._deliveries.list_subscriptions()
            self._wanted = any("import.progress" in s.event_types for s in subs)
            self._checked_at = time.monotonic()
        return self._wanted

    async def note(self, watch: Watch, snap: JobSnapshot, provider: str, clock: Clock) -> Watch:
        """Write an import.progress event when this poll's news is worth one; returns the
        watch with its progress bookkeeping (what to save with the poll)."""
        now = clock.now()
        step = progress_due(
            previous_status=watch.status,
            status=snap.status,
            done=snap.counts.processed,
            total=snap.counts.total,
            last_step=watch.progress_step,
            last_at=watch.progress_event_at,
            now=now,
            step=self._step,
            min_interval_s=self._min_interval_s,
        )
        if step is None or not await self.wanted():
            return watch
        seq = watch.progress_events + 1
        event = progress_event(
            watch=watch,
            provider=provider,
            snapshot=snap,
            previous_status=watch.status,
            seq=seq,
            now=now,
        )
        await self._deliveries.emit(event, now, self._retention_s)
        return replace(watch, progress_events=seq, progress_event_at=now, progress_step=step)
