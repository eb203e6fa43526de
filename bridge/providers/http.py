"""The upstream HTTP edge: one aiohttp session, explicit timeouts, a body size cap.

aiohttp's exceptions are translated here into TransientUpstreamError, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from bridge import USER_AGENT
from bridge.errors import TransientUpstreamError


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpClient(Protocol):
    """The transport seam: tests pass a plain object with this method."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: Mapping[str, str] | None = None,
    ) -> HttpAnswer: ...


class UpstreamHttp:
    """GET and POST with a total timeout and a cap on the size of what is read."""

    def __init__(
        self, session: aiohttp.ClientSession, *, timeout_s: float, max_body_bytes: int
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_body = max_body_bytes

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        try:
            async with self._session.request(
                method,
                url,
                headers=dict(headers),
                data=data,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                body = await self._read_capped(resp)
                return HttpAnswer(resp.status, body, {k: v for k, v in resp.headers.items()})
        except TimeoutError:
            raise TransientUpstreamError(f"no answer within {self._timeout.total:g} s") from None
        except aiohttp.ClientError as exc:
            raise TransientUpstreamError(f"connection failed: {type(exc).__name__}") from None

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := await resp.content.readany():
            size += len(chunk)
            if size > self._max_body:
                resp.close()
                raise TransientUpstreamError(f"answer larger than {self._max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def default_session(limit: int, *, trust_env: bool = False) -> aiohttp.ClientSession:
    """One session per process; connection pool sized to the poll concurrency.
    trust_env: HTTP(S)_PROXY / NO_PROXY (and .netrc) apply, as the operator asked."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=30, connect=10),
        raise_for_status=False,
        headers={"User-Agent": USER_AGENT},
        trust_env=trust_env,
    )
