"""Sources defined at run time, in Redis: a hash of name → the source's document,
sealed whole (it holds credentials); a version counter, and for each name the version
that changed it last, so a replica reads only what changed since the version it knows
(bridge/sources_live.py), however many sources there are."""

from __future__ import annotations

from typing import cast

from bridge.clock import to_ms
from bridge.sealing import SealError
from bridge.store.redis import RedisStore
from bridge.store.redis_errors import translated


@translated
class SourceDefStore:
    """On the watch store's connection; keys from its key schema; sealed with its
    sealer."""

    def __init__(self, store: RedisStore) -> None:
        self._client = store.client
        self._keys = store.keys
        self._sealer = store.sealer
        self._change = store.scripts["source_change"]
        self._reseal = store.scripts["source_reseal"]

    async def version(self) -> int:
        return int(await self._client.get(self._keys.source_defs_version) or 0)

    async def create(self, name: str, doc: str, now: float) -> bool:
        """False when a source of that name is defined already."""
        return await self._changed("create", name, self._sealer.seal(doc, _kind(name)), now)

    async def get(self, name: str) -> tuple[str, str] | None:
        """(the stored document as stored, opened), or None when none is defined."""
        stored = cast(str | None, await self._client.hget(self._keys.source_defs, name))
        return None if stored is None else (stored, self.open(name, stored))

    async def replace(self, name: str, doc: str, now: float, was: str) -> bool:
        """False when the stored document is no longer `was` (changed or deleted
        meanwhile: read it again)."""
        sealed = self._sealer.seal(doc, _kind(name))
        return await self._changed("replace", name, sealed, now, was)

    async def delete(self, name: str, now: float) -> bool:
        """False when none is defined. Its watches are dropped when next due."""
        return await self._changed("delete", name, "", now)

    async def _changed(self, op: str, name: str, sealed: str, now: float, was: str = "") -> bool:
        k = self._keys
        keys = [
            k.source_defs,
            k.source_defs_version,
            k.source_defs_changes,
            k.source_defs_deleted,
            k.source_token(name),
            k.source_token_lock(name),
            k.source_pause(name),
            k.source_health(name),
        ]
        return bool(await self._change(keys=keys, args=[op, name, sealed, to_ms(now), was]))

    async def read(self) -> tuple[int, dict[str, str], set[str]]:
        """Everything, at one instant: (version, name → document as stored, names
        deleted); open each with open()."""
        pipe = self._client.pipeline(transaction=True)
        pipe.get(self._keys.source_defs_version)
        pipe.hgetall(self._keys.source_defs)
        pipe.zrange(self._keys.source_defs_deleted, 0, -1)
        version, rows, deleted = await pipe.execute()
        return int(version or 0), dict(rows), set(cast(list[str], deleted))

    async def read_since(self, version: int) -> tuple[int, dict[str, str | None]]:
        """What changed after `version`: (the version now, name → its document as
        stored, None for one deleted), at one instant."""
        k = self._keys
        pipe = self._client.pipeline(transaction=True)
        pipe.get(k.source_defs_version)
        pipe.zrangebyscore(k.source_defs_changes, f"({version}", "+inf")
        now, names = await pipe.execute()
        names = cast(list[str], names)
        if not names:
            return int(now or 0), {}
        rows = cast(list[str | None], await self._client.hmget(k.source_defs, names))
        return int(now or 0), dict(zip(names, rows, strict=True))

    def open(self, name: str, sealed: str) -> str:
        """A stored document, opened (SealError naming the source)."""
        try:
            return self._sealer.open(sealed, _kind(name))
        except SealError as exc:
            raise SealError(f"source {name}: {exc}") from None

    async def names(self) -> list[str]:
        return sorted(cast(list[str], await self._client.hkeys(self._keys.source_defs)))

    async def reseal(self) -> tuple[int, list[str]]:
        """Every definition sealed under the first key (`secrets rotate`): (written again,
        names changed meanwhile, to run it for again). SealError when one does not open."""
        rows = cast(dict[str, str], await self._client.hgetall(self._keys.source_defs))
        written, missed = 0, []
        for name, stored in rows.items():
            if self._sealer.is_current(stored):
                continue
            fresh = self._sealer.seal(self.open(name, stored), _kind(name))
            if await self._reseal(keys=[self._keys.source_defs], args=[name, stored, fresh]):
                written += 1
            else:
                missed.append(name)
        return written, missed


def _kind(name: str) -> str:
    return f"source {name}"
