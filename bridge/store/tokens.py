"""API tokens made through the admin API (`/v1/tokens`): only a hash of each is kept,
so neither Redis nor its backups hold a usable token; a revoked one is gone for every
replica at once (each request looks its token up)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, cast

import orjson

from bridge.store.redis import RedisStore
from bridge.store.redis_errors import translated

PREFIX = "bt_"


@dataclass(frozen=True)
class TokenRecord:
    id: str
    role: str  # admin | read
    sources: tuple[str, ...]  # the patterns of the sources it may see
    description: str | None
    created_at: float

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "sources": list(self.sources),
            "description": self.description,
            "created_at": self.created_at,
        }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@translated
class TokenStore:
    def __init__(self, store: RedisStore) -> None:
        self._client = store.client
        self._keys = store.keys

    async def create(
        self, role: str, sources: list[str], description: str | None, now: float
    ) -> tuple[str, TokenRecord]:
        """A new token (its value, shown once) and its record."""
        token = PREFIX + secrets.token_urlsafe(32)
        record = TokenRecord("tok_" + secrets.token_hex(8), role, tuple(sources), description, now)
        digest = token_hash(token)
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self._keys.api_token(digest), orjson.dumps(record.view()).decode())
        pipe.hset(self._keys.api_tokens, record.id, digest)
        await pipe.execute()
        return token, record

    async def lookup(self, token: str) -> TokenRecord | None:
        if not token.startswith(PREFIX):
            return None
        text = await self._client.get(self._keys.api_token(token_hash(token)))
        return None if text is None else _record(str(text))

    async def lookup_hash(self, digest: str) -> TokenRecord | None:
        text = await self._client.get(self._keys.api_token(digest))
        return None if text is None else _record(str(text))

    async def list(self) -> list[TokenRecord]:
        digests = cast(dict[str, str], await self._client.hgetall(self._keys.api_tokens))
        if not digests:
            return []
        texts = await self._client.mget([self._keys.api_token(d) for d in digests.values()])
        records = [_record(str(t)) for t in texts if t]
        return sorted(records, key=lambda r: (r.created_at, r.id))

    async def delete(self, token_id: str) -> bool:
        digest = await self._client.hget(self._keys.api_tokens, token_id)
        if digest is None:
            return False
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(self._keys.api_token(str(digest)))
        pipe.hdel(self._keys.api_tokens, token_id)
        await pipe.execute()
        return True


def _record(text: str) -> TokenRecord:
    d = orjson.loads(text)
    return TokenRecord(d["id"], d["role"], tuple(d["sources"]), d.get("description"),
                       d["created_at"])  # fmt: skip
