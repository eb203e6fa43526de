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


async def test_reserved_items_wait_on_timers_not_in_workers() -> None:
    """Items whose slot is later do not hold a worker meanwhile: a pool of one keeps
    working on items due now; at stop, items still waiting are handed back unstarted."""
    batches = [[("later", 60.0), ("now-1", 0.0), ("now-2", 0.0)]]
    handled: list[str] = []
    handed_back: list[str] = []
    both = asyncio.Event()

    async def claim(free: int) -> list[tuple[str, float]]:
        return batches.pop(0) if batches else []

    async def handle(item: tuple[str, float]) -> None:
        handled.append(item[0])
        if len(handled) == 2:
            both.set()

    async def hand_back(item: tuple[str, float]) -> None:
        handed_back.append(item[0])

    pool: WorkerPool[tuple[str, float]] = WorkerPool(
        "test", 1, claim=claim, handle=handle, hand_back=hand_back, start_in=lambda i: i[1]
    )
    pool.start()
    await asyncio.wait_for(both.wait(), 5)
    assert handled == ["now-1", "now-2"]
    await asyncio.wait_for(pool.stop(grace_s=1), 5)
    assert handed_back == ["later"] and "later" not in handled
