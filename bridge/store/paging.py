"""Paging through a sorted-set index by an opaque cursor: never skipping or repeating
an item, however many share a score (the cursor is score and member)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bridge.store.redis_errors import translated

T = TypeVar("T")
Cursor = tuple[int, str]

# Members read per round when filtering a list, and rounds per page at most.
_LIST_BATCH = 200
_LIST_ROUNDS = 10


@translated
class IndexPager:
    def __init__(self, client: Any, page_script: Any) -> None:
        self.client = client
        self._page = page_script

    async def page(
        self,
        index: str,
        cursor: Cursor | None,
        limit: int,
        load: Callable[[list[str]], Awaitable[list[T | None]]],
        keep: Callable[[T], bool],
    ) -> tuple[list[T], Cursor | None]:
        """Walk a sorted-set index from the cursor, loading and filtering in batches."""
        found: list[T] = []
        after = cursor
        for _ in range(_LIST_ROUNDS):
            flat = await self._page(
                keys=[index],
                args=[str(after[0]) if after else "", after[1] if after else "", _LIST_BATCH],
            )
            rows = [(str(flat[i]), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]
            if not rows:
                return found, None
            items = await load([m for m, _ in rows])
            gone = [m for (m, _), item in zip(rows, items, strict=True) if item is None]
            if gone:  # expired after retention: drop them from the index
                await self.client.zrem(index, *gone)
            for (member, score), item in zip(rows, items, strict=True):
                after = (score, member)
                if item is None or not keep(item):
                    continue
                found.append(item)
                if len(found) == limit:
                    return found, after
        return found, after
