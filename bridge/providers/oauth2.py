"""OAuth2 client-credentials tokens, shared by every replica.

A token is cached in Redis until shortly before it expires; one replica refreshes
under a lock while the others wait for its token; a 401 drops it (only if no one
replaced it yet). Token requests go through a small fleet-wide budget of their own,
so a 401 storm cannot become a token storm.
"""

from __future__ import annotations

import asyncio
import base64
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from bridge.clock import Clock
from bridge.errors import AuthError, TransientUpstreamError
from bridge.providers.base import decode_json, error_detail
from bridge.providers.http import HttpClient

# How long a replica waits for another one's token refresh before giving up this poll.
_REFRESH_WAIT_S = 10.0
_REFRESH_STEP_S = 0.05


class _Token(BaseModel):
    model_config = ConfigDict(extra="allow")
    access_token: str
    expires_in: float
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret


class TokenCache(Protocol):
    """The shared token store (implemented by SourceStore)."""

    async def get_token(self, source: str) -> tuple[str, float] | None: ...
    async def set_token(self, source: str, token: str, ttl_s: float) -> None: ...
    async def drop_token(self, source: str, token: str) -> bool: ...
    async def lock_token_refresh(self, source: str, holder: str, ttl_s: float) -> bool: ...
    async def unlock_token_refresh(self, source: str, holder: str) -> None: ...


# A token is kept a day at most, whatever the endpoint says.
MAX_TOKEN_TTL_S = 86400.0


def token_ttl(expires_in: float) -> float:
    """Keep a token until shortly before it expires: 10 % early, at most 60 s early;
    between 1 s and a day (an endpoint may say 0, NaN or infinity)."""
    if not math.isfinite(expires_in):
        return MAX_TOKEN_TTL_S if expires_in > 0 else 1.0
    return min(MAX_TOKEN_TTL_S, max(1.0, expires_in - min(60.0, expires_in * 0.1)))


class ClientCredentials:
    """Bearer tokens for one source from its token endpoint (HTTP Basic client id and
    secret, form grant_type=client_credentials and the scope)."""

    def __init__(
        self,
        *,
        source: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        http: HttpClient,
        tokens: TokenCache,
        clock: Clock,
        throttle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._source = source
        self.token_url = token_url
        self._scope = scope
        self._throttle = throttle
        self._basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._http = http
        self._tokens = tokens
        self._clock = clock
        self._local: tuple[str, float] | None = None  # token, local expiry
        self._lock = asyncio.Lock()
        self.tokens_requested = 0

    async def drop(self, token: str) -> None:
        """This token was refused: forget it here and, unless replaced, fleet-wide."""
        if self._local and self._local[0] == token:
            self._local = None
        await self._tokens.drop_token(self._source, token)

    async def token(self) -> str:
        now = self._clock.now()
        if self._local and self._local[1] > now:
            return self._local[0]
        async with self._lock:  # one refresh per process at a time
            holder = secrets.token_hex(8)
            deadline = self._clock.now() + _REFRESH_WAIT_S
            while True:
                cached = await self._tokens.get_token(self._source)
                if cached:
                    token, ttl = cached
                    self._local = (token, self._clock.now() + ttl)
                    return token
                if await self._tokens.lock_token_refresh(self._source, holder, _REFRESH_WAIT_S):
                    try:
                        token, ttl = await self._request_token()
                        await self._tokens.set_token(self._source, token, ttl)
                    finally:
                        await self._tokens.unlock_token_refresh(self._source, holder)
                    self._local = (token, self._clock.now() + ttl)
                    return token
                if self._clock.now() > deadline:
                    raise TransientUpstreamError("token refresh by another replica timed out")
                await asyncio.sleep(_REFRESH_STEP_S)  # another replica is refreshing

    async def _request_token(self) -> tuple[str, float]:
        if self._throttle is not None:
            await self._throttle()
        self.tokens_requested += 1
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        answer = await self._http.request(
            "POST",
            self.token_url,
            headers={"Authorization": f"Basic {self._basic}", "Accept": "application/json"},
            data=form,
        )
        if answer.status in (400, 401, 403):
            raise AuthError(
                f"token endpoint refused the credentials: {answer.status} "
                f"{error_detail(answer.body)}",
                http_status=answer.status,
                credentials=True,
            )
        if not 200 <= answer.status < 300:
            raise TransientUpstreamError(f"token endpoint answered {answer.status}")
        try:  # bounded as every upstream answer: a 200k-deep body is just malformed
            token = _Token.model_validate(decode_json(answer.body))
        except (TransientUpstreamError, ValidationError):
            raise TransientUpstreamError("token endpoint sent a malformed answer") from None
        value = token.access_token
        if not (0 < len(value) <= 4096 and value.isascii() and value.isprintable()) or " " in value:
            raise TransientUpstreamError("token endpoint sent an unusable token")
        return token.access_token, token_ttl(token.expires_in)
