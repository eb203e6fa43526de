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

# A batch is cut at this many calls so one flush never holds a connection too long.
MAX_BATCH = 256


class Coalescer(Generic[Item, Result]):
    """`flush` receives the items of one loop turn and returns one result per item."""

    def __init__(self, flush: Callable[[list[Item]], Awaitable[Sequence[Result]]]) -> None:
        self._flush_fn = flush
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._scheduled = False

    async def call(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            # call_soon: every task resumed in this loop turn gets to add its call first.
            loop.call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), MAX_BATCH):
            task = asyncio.ensure_future(self._flush(batch[start : start + MAX_BATCH]))
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
