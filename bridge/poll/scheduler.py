"""The local ticker: APScheduler enters the bridge here and nowhere else.

The real schedule lives in Redis (a sorted set of due times); APScheduler only
wakes this process up at a steady beat. Job bodies are cheap and cancellation-safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler


class Ticker:
    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )

    def every(self, seconds: float, job: Callable[[], Awaitable[None]], name: str) -> None:
        async def tick() -> None:
            try:
                await job()
            except asyncio.CancelledError:
                # APScheduler's shutdown cancels a job that is running: that is the ticker
                # stopping, not the job failing, and it must not log a traceback.
                return

        self._scheduler.add_job(tick, "interval", seconds=seconds, id=name, name=name)

    def start(self) -> None:
        """Needs a running event loop."""
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
