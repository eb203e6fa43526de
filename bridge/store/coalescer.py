"""Coalesces calls made in the same event-loop turn into one Redis round trip.

Dozens of polls finish at about the same time; sending their writes together costs
one connection checkout, one command to pack and one reply to parse instead of
dozens. Each caller still gets its own result (or exception), as if it had called
alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# A batch is sent at this many calls, or after the delay, whichever comes first.
MAX_BATCH = 64
# Waiting a moment for more calls is cheap next to a Redis round trip (a syscall pair
# and a context switch each): a watch's lease is held meanwhile, so nobody else polls it.
MAX_DELAY_S = 0.005


class Coalescer(Generic[Item, Result]):
    """`flush` receives the items of one loop turn and returns one result per item."""

    def __init__(
        self,
        flush: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = MAX_BATCH,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        self._flush_fn = flush
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flushing: set[asyncio.Future[None]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def call(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self._max_batch:
            self._start_flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_delay_s, self._start_flush)
        return await future

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            # The loop keeps only weak references to tasks: hold each flush until done.
            task = asyncio.ensure_future(self._flush(batch))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
            task.add_done_callback(_consume)

    async def _flush(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._flush_fn([item for item, _ in batch])
        except BaseException as exc:  # the round trip failed: every caller learns why
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if len(results) != len(batch):  # never leave a caller waiting forever
            mismatch = RuntimeError(f"{len(results)} results for {len(batch)} calls")
            results = [mismatch] * len(batch)  # type: ignore[list-item]
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
