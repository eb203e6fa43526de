"""A fixed pool of workers fed by one claiming loop: the shape shared by the poller
and the deliverer.

The loop claims work from Redis only when woken (by the ticker, or when workers
run dry after a claim that filled every slot), in batches of at least a quarter
of the pool, so Redis sees one claim per many items rather than one per item.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog

from bridge.outage import OutageLog

log = structlog.get_logger("bridge.workers")

CANCEL_WAIT_S = 0.5  # how long a cancelled task gets to unwind at shutdown

Item = TypeVar("Item")


class WorkerPool(Generic[Item]):
    def __init__(
        self,
        name: str,
        size: int,
        *,
        claim: Callable[[int], Awaitable[list[Item]]],
        handle: Callable[[Item], Awaitable[object]],
        hand_back: Callable[[Item], Awaitable[object]] | None = None,
        outage: OutageLog | None = None,
        start_in: Callable[[Item], float] | None = None,
    ) -> None:
        """start_in: seconds before an item may start (a reserved slot); such an item
        waits on a timer, not in a worker, so sleeping slots never hold the pool."""
        self.name = name
        self.size = size
        self._claim = claim
        self._handle = handle
        self._hand_back = hand_back
        self._outage = outage or OutageLog()
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = 0
        self._more_due = False  # the last claim was cut by free slots, not by due work
        self._refill_at = max(1, size // 4)
        self._stopping = False
        self._start_in = start_in
        self._timers: dict[int, tuple[asyncio.TimerHandle, Item]] = {}

    @property
    def busy(self) -> int:
        return self._busy

    def free(self) -> int:
        # Items waiting on timers for their slots are free up to the pool's size: enough
        # to keep every worker fed between claims, not a pile that bursts out later.
        waiting = max(0, len(self._timers) - self.size)
        return self.size - self._busy - self._queue.qsize() - waiting

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"{self.name}-claims")
        self._workers = [
            asyncio.create_task(self._work(), name=f"{self.name}-{i}") for i in range(self.size)
        ]
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    def begin_stop(self) -> None:
        """Claim nothing more and start nothing more, from now on."""
        self._stopping = True
        self._wake.set()

    async def stop(self, grace_s: float) -> None:
        """Stop claiming; hand back what was claimed but not started; let work in
        flight finish until grace_s from now, then cancel it (its lease expires; nothing
        is lost). Returns within grace_s plus a short bound for the cancellations."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s

        def left() -> float:
            return max(0.0, deadline - loop.time())

        self.begin_stop()
        if self._loop_task:  # a claim stuck on Redis must not hold the shutdown up
            _, pending = await asyncio.wait({self._loop_task}, timeout=left())
            await cancel_within(list(pending), CANCEL_WAIT_S, f"{self.name}-claims")
        queued = []
        for handle, item in self._timers.values():  # reserved for later: not started
            handle.cancel()
            queued.append(item)
        self._timers.clear()
        while not self._queue.empty():
            queued.append(self._queue.get_nowait())
        if queued and self._hand_back:
            await self._hand_back_all(queued, left())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), left())
        await cancel_within(self._workers, CANCEL_WAIT_S, self.name)
        self._workers = []

    async def _hand_back_all(self, items: list[Item], within_s: float) -> None:
        assert self._hand_back is not None
        hand_back = self._hand_back

        async def one(item: Item) -> None:
            with contextlib.suppress(Exception):  # worst case the lease expires instead
                await hand_back(item)

        tasks = [asyncio.ensure_future(one(item)) for item in items]
        _, late = await asyncio.wait(tasks, timeout=max(within_s, 0.01))
        await cancel_within(list(late), CANCEL_WAIT_S, f"{self.name}-hand-back")

    async def fill(self) -> int:
        """Claim as many items as there are idle workers."""
        free = self.free()
        if free <= 0:
            return 0
        items = await self._claim(free)
        self._more_due = len(items) == free
        loop = asyncio.get_running_loop()
        for item in items:
            delay = self._start_in(item) if self._start_in else 0.0
            if delay > 0:
                key = id(item)
                self._timers[key] = (loop.call_later(delay, self._due, key), item)
            else:
                self._queue.put_nowait(item)
        return len(items)

    def _due(self, key: int) -> None:
        _, item = self._timers.pop(key)
        self._queue.put_nowait(item)

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            if self.free() <= 0:
                continue  # nothing asked of Redis: nothing learnt about it either
            try:
                await self.fill()
            except Exception as exc:  # Redis down: keep the loop alive; the next tick retries
                self._outage.failed(f"{self.name}-claims", exc)
            else:
                self._outage.succeeded()

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            if self._stopping:  # claimed before the stop, not started: hand it back
                if self._hand_back:
                    with contextlib.suppress(Exception):
                        await self._hand_back(item)
                continue
            self._busy += 1
            self._idle.clear()
            try:
                await self._handle(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one item's surprise stop the others
                self._outage.failed(self.name, exc)  # its lease expires; said once
            finally:
                self._busy -= 1
                if not self._busy:
                    self._idle.set()
            if self._more_due and self.free() >= self._refill_at:
                self._more_due = False
                self.wake()


async def cancel_within(tasks: list[asyncio.Task[Any]], grace_s: float, what: str) -> None:
    """Cancel and wait at most grace_s: a library that swallows a cancellation (it
    happens) must not hold a shutdown up forever. Leftovers die with the loop."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, stuck = await asyncio.wait(tasks, timeout=grace_s)
    if stuck:
        log.warning("tasks_did_not_stop", what=what, count=len(stuck))
