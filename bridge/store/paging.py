"""Paging through a sorted-set index by an opaque cursor: never skipping or repeating
an item, however many share a score (the cursor is score and member)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
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
        index: str | Sequence[str],
        cursor: Cursor | None,
        limit: int,
        load: Callable[[list[str]], Awaitable[list[T | None]]],
        keep: Callable[[T], bool],
    ) -> tuple[list[T], Cursor | None]:
        """Walk a sorted-set index from the cursor, loading and filtering in batches;
        several indexes (one per partition) are walked as one, merged in their order."""
        indexes = [index] if isinstance(index, str) else list(index)
        found: list[T] = []
        after = cursor
        for _ in range(_LIST_ROUNDS):
            rows, home = await self._rows(indexes, after)
            if not rows:
                return found, None
            items = await load([m for m, _ in rows])
            gone = [m for (m, _), item in zip(rows, items, strict=True) if item is None]
            if gone:  # expired after retention: drop them from their index
                for ix in {home[m] for m in gone}:
                    await self.client.zrem(ix, *(m for m in gone if home[m] == ix))
            for (member, score), item in zip(rows, items, strict=True):
                after = (score, member)
                if item is None or not keep(item):
                    continue
                found.append(item)
                if len(found) == limit:
                    return found, after
        return found, after

    async def _rows(
        self, indexes: list[str], after: Cursor | None
    ) -> tuple[list[tuple[str, int]], dict[str, str]]:
        """The next members after the cursor, in (score, member) order, with the index
        each came from. An index that filled its batch may hold more past its last row,
        so nothing past the first such last row is returned yet."""
        args = [str(after[0]) if after else "", after[1] if after else "", _LIST_BATCH]
        batches = [await self._page(keys=[ix], args=args) for ix in indexes]
        home: dict[str, str] = {}
        rows: list[tuple[str, int]] = []
        cut: tuple[int, str] | None = None
        for ix, flat in zip(indexes, batches, strict=True):
            mine = [(str(flat[i]), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]
            for member, _ in mine:
                home[member] = ix
            rows += mine
            if len(mine) == _LIST_BATCH:
                last = (mine[-1][1], mine[-1][0])
                cut = last if cut is None else min(cut, last)
        if len(indexes) > 1:
            rows.sort(key=lambda r: (r[1], r[0]))
            if cut is not None:
                rows = [r for r in rows if (r[1], r[0]) <= cut]
        return rows, home
