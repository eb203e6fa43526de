"""Events and the outbox: an event is written once, with its transition (finish,
set_health, emit); here it is read back, listed, and fed to pull consumers in outbox
order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from bridge.event_types import type_matches
from bridge.model import Event
from bridge.store import codec
from bridge.store.keys import Keys
from bridge.store.paging import Cursor, IndexPager
from bridge.store.redis_errors import translated


@translated
class EventStore:
    def __init__(self, client: Any, keys: Keys, pager: IndexPager) -> None:
        """The watch store's connection, key schema and index pager."""
        self.client = client
        self.keys = keys
        self._pager = pager

    async def get_event(self, event_id: str) -> Event | None:
        text = cast(str | None, await self.client.get(self.keys.event(event_id)))
        return codec.event_from_json(text) if text else None

    async def list_events(
        self,
        *,
        watch_id: str | None = None,
        type_: str | None = None,
        source: str | None = None,
        cursor: Cursor | None = None,
        limit: int = 50,
        sources: Callable[[object], bool] | None = None,
    ) -> tuple[list[Event], Cursor | None]:
        index = self.keys.watch_events(watch_id) if watch_id else self.keys.events

        async def load(ids: list[str]) -> list[Event | None]:
            texts = cast(
                list[str | None], await self.client.mget([self.keys.event(i) for i in ids])
            )
            return [codec.event_from_json(t) if t else None for t in texts]

        def keep(e: Event) -> bool:
            return (
                (type_ is None or type_matches(type_, e.type))
                and (source is None or e.data.get("source") == source)
                and (sources is None or sources(e.data.get("source")))
            )

        return await self._pager.page(index, cursor, limit, load, keep)

    async def feed(self, after: str, limit: int) -> tuple[list[tuple[str, Event]], str]:
        """Events written after the outbox id `after`, oldest first, each with its id
        (the pull feed's cursor), and the id of the last row read: events past their
        retention are skipped, and the cursor moves past them too."""
        rows = cast(
            list[tuple[str, dict[str, str]]],
            await self.client.xrange(self.keys.outbox, min=f"({after}", count=limit),
        )
        if not rows:
            return [], after
        texts = cast(
            list[str | None],
            await self.client.mget([self.keys.event(fields["event_id"]) for _, fields in rows]),
        )
        events = [
            (stream_id, codec.event_from_json(text))
            for (stream_id, _), text in zip(rows, texts, strict=True)
            if text
        ]
        return events, rows[-1][0]

    async def outbox_length(self) -> int:
        return int(await self.client.xlen(self.keys.outbox))

    async def read_outbox(self, count: int = 100) -> list[dict[str, str]]:
        rows = cast(
            list[tuple[str, dict[str, str]]],
            await self.client.xrange(self.keys.outbox, count=count),
        )
        return [dict(fields) for _, fields in rows]
