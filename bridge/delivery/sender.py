"""The only HTTP client code for webhooks: one session, the SSRF guard, no redirects,
a per-attempt timeout and a short snippet of each answer."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp.resolver import DefaultResolver

from bridge import USER_AGENT
from bridge.delivery.targets import (
    GuardedResolver,
    RefusedAddresses,
    TargetPolicy,
    TargetRefused,
    check_host,
    literal_ip,
    url_host,
)
from bridge.retry_after import parse_retry_after

SNIPPET_BYTES = 256


@dataclass(frozen=True)
class SendResult:
    status: int | None  # None: no HTTP answer at all
    latency_s: float
    error: str | None = None
    snippet: str | None = None
    retry_after_s: float | None = None


class Sender(Protocol):
    """What the deliverer needs of an HTTP client (tests script it)."""

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult: ...


def webhook_session(
    *, limit: int, policy: TargetPolicy, trust_env: bool = False
) -> aiohttp.ClientSession:
    """Every address the session connects to passes the SSRF guard. With trust_env a
    proxy from HTTP(S)_PROXY carries the requests: the guard then sees the proxy's
    address (allow it with delivery.allowed_targets if it is private), and the sender
    checks each target's name as it resolves here before the request."""
    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=0,
        resolver=GuardedResolver(DefaultResolver(), policy),
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        raise_for_status=False,
        headers={"User-Agent": USER_AGENT},
        trust_env=trust_env,
    )


class WebhookSender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float,
        policy: TargetPolicy,
        check_names: bool = False,
    ) -> None:
        self._session = session
        self._check_names = check_names  # through a proxy: resolve and check here first
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._policy = policy

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        started = time.perf_counter()
        refused = self._refused(url)
        if refused is None and self._check_names:
            refused = await self._refused_name(url)
        if refused:
            return SendResult(None, 0.0, error=f"target refused: {refused}")
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                snippet = await resp.content.read(SNIPPET_BYTES)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), time.time())
                return SendResult(
                    resp.status,
                    time.perf_counter() - started,
                    error=None if 200 <= resp.status < 300 else f"HTTP {resp.status}",
                    snippet=snippet.decode("utf-8", "replace") or None,
                    retry_after_s=retry_after,
                )
        except TimeoutError:
            return SendResult(None, time.perf_counter() - started, error="timed out")
        except aiohttp.ClientError as exc:
            refused = getattr(exc, "os_error", None)
            if isinstance(refused, RefusedAddresses):  # the guard, at connection time
                return SendResult(None, time.perf_counter() - started, f"target refused: {refused}")
            # the system's words when it has them (refused, unreachable), not a class name
            why = None
            if isinstance(refused, OSError):
                why = os.strerror(refused.errno) if refused.errno else refused.strerror
            return SendResult(
                None,
                time.perf_counter() - started,
                error=f"connection failed: {(why or type(exc).__name__).lower()}",
            )
        except OSError as exc:  # a socket failure aiohttp did not wrap
            return SendResult(None, time.perf_counter() - started, error=str(exc)[:200])
        except (ValueError, TypeError) as exc:  # aiohttp refusing a header or URL it cannot send
            return SendResult(
                None,
                time.perf_counter() - started,
                error=f"request not sendable: {type(exc).__name__}",
            )

    async def _refused_name(self, url: str) -> str | None:
        parts = urlsplit(url)
        host = url_host(url) or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, check_host, host, port, self._policy)
        except TargetRefused as exc:
            return str(exc)
        return None

    def _refused(self, url: str) -> str | None:
        """aiohttp does not resolve IP literals, so they are checked here, as aiohttp
        reads the host (an IP written in other digits or dots is an IP literal too)."""
        host = url_host(url)
        if host is None:
            return "not a valid URL"
        if literal_ip(host) is not None:
            return self._policy.refused(host)
        return None


__all__ = ["SendResult", "Sender", "TargetRefused", "WebhookSender", "webhook_session"]
