"""Sources defined at run time, in Redis: a hash of name → the source's document,
sealed whole (it holds credentials), and a version every replica watches to pick up a
change within about a second (bridge/sources_live.py)."""

from __future__ import annotations

from typing import cast

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
        self._replace = store.scripts["source_replace"]
        self._reseal = store.scripts["source_reseal"]

    async def version(self) -> int:
        return int(await self._client.get(self._keys.source_defs_version) or 0)

    async def create(self, name: str, doc: str) -> bool:
        """False when a source of that name is defined already."""
        sealed = self._sealer.seal(doc, _kind(name))
        pipe = self._client.pipeline(transaction=True)
        pipe.hsetnx(self._keys.source_defs, name, sealed)
        pipe.incr(self._keys.source_defs_version)
        pipe.zrem(self._keys.source_defs_deleted, name)
        created, _, _ = await pipe.execute()
        return bool(created)

    async def replace(self, name: str, doc: str) -> bool:
        """False when no source of that name is defined (deleted meanwhile)."""
        sealed = self._sealer.seal(doc, _kind(name))
        keys = [self._keys.source_defs, self._keys.source_defs_version]
        return bool(await self._replace(keys=keys, args=[name, sealed]))

    async def delete(self, name: str, now_ms: int) -> bool:
        """Deleted: its watches are dropped when next due (sources_deleted says since
        when)."""
        pipe = self._client.pipeline(transaction=True)
        pipe.hdel(self._keys.source_defs, name)
        pipe.incr(self._keys.source_defs_version)
        pipe.zadd(self._keys.source_defs_deleted, {name: now_ms})
        deleted, _, _ = await pipe.execute()
        if not deleted:  # there was none: nothing is marked deleted
            await self._client.zrem(self._keys.source_defs_deleted, name)
        return bool(deleted)

    async def names(self) -> list[str]:
        return sorted(cast(list[str], await self._client.hkeys(self._keys.source_defs)))

    async def reseal(self) -> tuple[int, list[str]]:
        """Every definition sealed under the first key (`secrets rotate`): (written again,
        names changed meanwhile, to run it for again). SealError when one does not open."""
        rows = cast(dict[str, str], await self._client.hgetall(self._keys.source_defs))
        keys = [self._keys.source_defs, self._keys.source_defs_version]
        written, missed = 0, []
        for name, stored in rows.items():
            if self._sealer.is_current(stored):
                continue
            try:
                fresh = self._sealer.seal(self._sealer.open(stored, _kind(name)), _kind(name))
            except SealError as exc:
                raise SealError(f"source {name}: {exc}") from None
            if await self._reseal(keys=keys, args=[name, stored, fresh]):
                written += 1
            else:
                missed.append(name)
        return written, missed

    async def read(self) -> tuple[int, dict[str, str], set[str]]:
        """(version, name → document, names deleted), read at one instant. A document
        the keys at hand cannot open is SealError naming the source."""
        pipe = self._client.pipeline(transaction=True)
        pipe.get(self._keys.source_defs_version)
        pipe.hgetall(self._keys.source_defs)
        pipe.zrange(self._keys.source_defs_deleted, 0, -1)
        version, rows, deleted = await pipe.execute()
        docs = {}
        for name, sealed in cast(dict[str, str], rows).items():
            try:
                docs[name] = self._sealer.open(sealed, _kind(name))
            except SealError as exc:
                raise SealError(f"source {name}: {exc}") from None
        return int(version or 0), docs, set(cast(list[str], deleted))


def _kind(name: str) -> str:
    return f"source {name}"
