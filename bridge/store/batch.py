"""Coalesces script calls made in the same event-loop turn into one pipeline.

Dozens of polls finish at about the same time; sending their writes as one
pipeline costs one connection checkout and one round trip instead of dozens. Each
caller still gets its own result (or exception), as if it had called alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

# A pipeline is cut at this many calls so one flush never holds a connection too long.
MAX_BATCH = 256


class ScriptBatcher:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pending: list[tuple[AsyncScript, list[str], list[Any], asyncio.Future[Any]]] = []
        self._scheduled = False

    async def call(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((script, keys, args, future))
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

    async def _flush(
        self, batch: list[tuple[AsyncScript, list[str], list[Any], asyncio.Future[Any]]]
    ) -> None:
        try:
            if len(batch) == 1:
                script, keys, args, future = batch[0]
                result = await script(keys=keys, args=args)
                if not future.done():
                    future.set_result(result)
                return
            pipe = self._client.pipeline(transaction=False)
            for script, keys, args, _ in batch:
                await script(keys=keys, args=args, client=pipe)
            results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the whole round trip failed: every caller learns why
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
