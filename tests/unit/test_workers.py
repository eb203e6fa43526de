"""The worker pool stops within its grace period whatever its work does."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from bridge.workers import WorkerPool


async def test_stop_is_bounded_when_work_swallows_cancellation() -> None:
    """Work that ignores a cancel is left behind after the grace period, with a warning."""
    started = asyncio.Event()
    claimed = False

    async def claim(free: int) -> list[int]:
        nonlocal claimed
        if claimed:
            return []
        claimed = True
        return [1]

    release = asyncio.Event()

    async def stubborn(item: int) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # until cancelled
        except asyncio.CancelledError:
            await release.wait()  # ignores the cancel, as a buggy library may

    pool: WorkerPool[int] = WorkerPool("test", 2, claim=claim, handle=stubborn)
    pool.start()
    await asyncio.wait_for(started.wait(), 5)
    with capture_logs() as logs:
        await asyncio.wait_for(pool.stop(grace_s=0.2), 5)
    assert any(e["event"] == "tasks_did_not_stop" for e in logs)
    release.set()  # let the leftover finish before the loop closes
