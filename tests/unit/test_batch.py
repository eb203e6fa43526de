"""The coalescer: calls of one loop turn share a flush; every caller gets its own
answer, and no caller is left waiting when a flush goes wrong."""

from __future__ import annotations

import asyncio

import pytest

from bridge.store.coalescer import Coalescer


async def test_one_flush_per_turn_and_results_in_order() -> None:
    """Ten calls made together are one flush; each gets the result for its item."""
    flushes: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        flushes.append(items)
        return [i * 10 for i in items]

    batcher: Coalescer[int, int] = Coalescer(flush, max_batch=64, max_delay_s=0.001)
    assert await asyncio.gather(*(batcher.call(i) for i in range(10))) == [
        i * 10 for i in range(10)
    ]
    assert flushes == [list(range(10))]


async def test_full_batches_go_at_once() -> None:
    """A batch is sent as soon as it is full."""
    sizes: list[int] = []

    async def flush(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    batcher: Coalescer[int, int] = Coalescer(flush, max_batch=4, max_delay_s=10)
    assert await asyncio.gather(*(batcher.call(i) for i in range(8))) == list(range(8))
    assert sizes == [4, 4]


async def test_failures_reach_every_caller() -> None:
    """A failed flush, a per-item error and a wrong number of results all answer
    every caller instead of leaving one waiting."""

    async def broken(items: list[int]) -> list[int]:
        raise ConnectionError("redis went away")

    async def per_item(items: list[int]) -> list[int | BaseException]:
        return [ValueError("odd") if i % 2 else i for i in items]

    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    b1: Coalescer[int, int] = Coalescer(broken, max_delay_s=0.001)
    results = await asyncio.gather(*(b1.call(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    b2: Coalescer[int, int | BaseException] = Coalescer(per_item, max_delay_s=0.001)
    results = await asyncio.gather(*(b2.call(i) for i in range(4)), return_exceptions=True)
    assert results[0] == 0 and isinstance(results[1], ValueError) and results[2] == 2
    b3: Coalescer[int, int] = Coalescer(short, max_delay_s=0.001)
    with pytest.raises(RuntimeError, match="2 results for 3 calls"):
        await asyncio.wait_for(asyncio.gather(*(b3.call(i) for i in range(3))), 5)
