"""Talkdesk Bulk Import API (`bulk-imports:read`).

GET {base}/bulk-imports/users/{id} with a bearer token from the OAuth2 client
credentials grant, and `Accept: application/json` (406 otherwise). The token is
cached in Redis and shared by every replica until shortly before it expires; a
401 drops it (only if no one replaced it yet) and the poll is retried once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from bridge.clock import Clock
from bridge.errors import AuthError, TransientUpstreamError
from bridge.model import Counts, JobSnapshot, Outcome
from bridge.providers.base import error_detail, first_problem
from bridge.providers.http import HttpClient

API_HOSTS = {
    "us": "https://api.talkdeskapp.com",
    "eu": "https://api.talkdeskapp.eu",
    "ca": "https://api.talkdeskappca.com",
}
ID_HOSTS = {"us": "talkdeskid.com", "eu": "talkdeskid.eu", "ca": "talkdeskidca.com"}
SCOPE = "bulk-imports:read"

STATUS_OUTCOMES: dict[str, Outcome | None] = {
    "QUEUED": None,
    "IN_PROGRESS": None,
    "COMPLETED": Outcome.COMPLETED,
    "COMPLETED_WITH_ERRORS": Outcome.COMPLETED_WITH_ERRORS,
    "FAILED": Outcome.FAILED,
    "CANCELED": Outcome.CANCELED,
}

# How long a replica waits for another one's token refresh before giving up this poll.
_REFRESH_WAIT_S = 10.0
_REFRESH_STEP_S = 0.05


class _Import(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    status: str
    total_records: int | None = None
    completed_records: int | None = None
    failed_records: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    canceled_at: str | None = None


class _Token(BaseModel):
    model_config = ConfigDict(extra="allow")
    access_token: str
    expires_in: float
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret


class TokenCache(Protocol):
    """The shared token store (implemented by RedisStore)."""

    async def get_token(self, source: str) -> tuple[str, float] | None: ...
    async def set_token(self, source: str, token: str, ttl_s: float) -> None: ...
    async def drop_token(self, source: str, token: str) -> bool: ...
    async def lock_token_refresh(self, source: str, holder: str, ttl_s: float) -> bool: ...
    async def unlock_token_refresh(self, source: str, holder: str) -> None: ...


def outcome_for(status: str) -> Outcome | None:
    return STATUS_OUTCOMES.get(status)


def token_ttl(expires_in: float) -> float:
    """Keep a token until shortly before it expires: 10 % early, at most 60 s early."""
    return max(1.0, expires_in - min(60.0, expires_in * 0.1))


def finished_at(body: _Import, outcome: Outcome | None) -> str | None:
    if outcome is Outcome.CANCELED and body.canceled_at:
        return body.canceled_at
    return body.updated_at if outcome else None


class TalkdeskProvider:
    name = "talkdesk"
    kinds = ("users",)

    def __init__(
        self,
        *,
        source: str,
        account: str,
        client_id: str,
        client_secret: str,
        http: HttpClient,
        tokens: TokenCache,
        clock: Clock,
        region: str = "us",
        base_url: str | None = None,
        token_url: str | None = None,
        token_throttle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._source = source
        # Token requests go through a small fleet-wide budget of their own
        self._token_throttle = token_throttle
        self._basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._http = http
        self._tokens = tokens
        self._clock = clock
        self.base_url = (base_url or API_HOSTS[region]).rstrip("/")
        self.token_url = token_url or f"https://{account}.{ID_HOSTS[region]}/oauth/token"
        self._local: tuple[str, float] | None = None  # token, local expiry
        self._lock = asyncio.Lock()
        self.tokens_requested = 0

    def job_url(self, kind: str, job_id: str) -> str:
        return f"{self.base_url}/bulk-imports/{kind}/{quote(job_id, safe='')}"

    async def auth_headers(self) -> dict[str, str]:
        token = await self._token()
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def on_unauthorized(self, headers: dict[str, str]) -> bool:
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        if self._local and self._local[0] == token:
            self._local = None
        await self._tokens.drop_token(self._source, token)
        return True

    def parse(self, body: Any) -> JobSnapshot:
        try:
            parsed = _Import.model_validate(body)
        except ValidationError as exc:
            raise TransientUpstreamError(f"malformed answer: {first_problem(exc)}") from None
        outcome = outcome_for(parsed.status)
        return JobSnapshot(
            status=parsed.status,
            outcome=outcome,
            counts=Counts(
                total=parsed.total_records,
                succeeded=parsed.completed_records,
                failed=parsed.failed_records,
            ),
            created_at=parsed.created_at,
            finished_at=finished_at(parsed, outcome),
            raw=body,
        )

    # ------------------------------------------------------------------ tokens
    async def _token(self) -> str:
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
        if self._token_throttle is not None:
            await self._token_throttle()
        self.tokens_requested += 1
        answer = await self._http.request(
            "POST",
            self.token_url,
            headers={"Authorization": f"Basic {self._basic}", "Accept": "application/json"},
            data={"grant_type": "client_credentials", "scope": SCOPE},
        )
        if answer.status in (400, 401, 403):
            raise AuthError(
                f"token endpoint refused the credentials: {answer.status} "
                f"{error_detail(answer.body)}",
                http_status=answer.status,
            )
        if not 200 <= answer.status < 300:
            raise TransientUpstreamError(f"token endpoint answered {answer.status}")
        try:
            token = _Token.model_validate(json.loads(answer.body))
        except (ValueError, ValidationError):
            raise TransientUpstreamError("token endpoint sent a malformed answer") from None
        return token.access_token, token_ttl(token.expires_in)
