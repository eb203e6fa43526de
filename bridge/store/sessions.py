"""Console sessions: a session id (the cookie) → what it holds, for a limited time.
The key names a hash of the session id, never the id: whoever reads Redis (its
append-only file, a backup, MONITOR) cannot sign in with what they read."""

from __future__ import annotations

import hashlib
from typing import cast

from bridge.clock import to_ms
from bridge.store.redis import RedisStore
from bridge.store.redis_errors import translated


@translated
class SessionStore:
    """On the watch store's connection; keys from its key schema."""

    def __init__(self, store: RedisStore) -> None:
        self._client = store.client
        self._keys = store.keys

    async def get(self, session_id: str) -> str | None:
        return cast(str | None, await self._client.get(self._keys.ui_session(_hashed(session_id))))

    async def put(self, session_id: str, value: str, ttl_s: float) -> None:
        await self._client.set(self._keys.ui_session(_hashed(session_id)), value, px=to_ms(ttl_s))

    async def drop(self, session_id: str) -> None:
        await self._client.delete(self._keys.ui_session(_hashed(session_id)))


def _hashed(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
