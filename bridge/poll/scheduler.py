"""The local ticker: APScheduler enters the bridge here and nowhere else.

The real schedule lives in Redis (a sorted set of due times); APScheduler only
wakes this process up at a steady beat. Each beat starts its job as a task and
returns: a job still running when the next beat comes (Redis slow or silent) makes
that beat a quiet no-op, instead of a warning from APScheduler every beat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = structlog.get_logger("bridge.scheduler")


class Ticker:
    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )
        self._running: dict[str, asyncio.Task[None]] = {}

    def every(self, seconds: float, job: Callable[[], Awaitable[None]], name: str) -> None:
        async def tick() -> None:
            running = self._running.get(name)
            if running is not None and not running.done():
                return  # the last beat's job still runs: this beat has nothing to add
            task = asyncio.ensure_future(job())
            self._running[name] = task
            task.add_done_callback(lambda t: _said(name, t))

        self._scheduler.add_job(tick, "interval", seconds=seconds, id=name, name=name)

    def start(self) -> None:
        """Needs a running event loop."""
        self._scheduler.start()

    def stop(self) -> None:
        """No more beats; jobs under way are cancelled (the daemon drains its own work)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for task in self._running.values():
            task.cancel()
        self._running.clear()


def _said(name: str, task: asyncio.Task[None]) -> None:
    """A job's failure, read so asyncio never warns of it; cancellation is the ticker
    stopping, not the job failing, and logs nothing."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("tick_failed", job=name, exc_info=exc)
