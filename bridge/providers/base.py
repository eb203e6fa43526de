"""What a provider is, and the fetch that every provider shares.

A provider is a small adapter: the URL of a job, the auth headers, and the parse
of an answer into a JobSnapshot. HTTP status classification is common to all.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson
from pydantic import ValidationError

from bridge.errors import (
    AuthError,
    NotFoundError,
    RateLimitedError,
    TransientUpstreamError,
    UpstreamError,
)
from bridge.model import JobSnapshot
from bridge.providers.http import HttpAnswer, HttpClient
from bridge.retry_after import parse_retry_after

# A 429 without a readable Retry-After pauses the source this long; a stated one is capped.
DEFAULT_RETRY_AFTER_S = 30.0
MAX_RETRY_AFTER_S = 3600.0


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kinds(self) -> tuple[str, ...]:
        """Kinds of job this provider polls; the first is the default."""
        ...

    def job_url(self, kind: str, job_id: str) -> str: ...

    def parse(self, body: Any) -> JobSnapshot:
        """A decoded 2xx JSON body as a snapshot; TransientUpstreamError when unusable."""
        ...

    async def auth_headers(self) -> dict[str, str]: ...

    async def on_unauthorized(self, headers: dict[str, str]) -> bool:
        """A 401 came back for these headers; True when a retry with fresh ones is worth it."""
        ...


@runtime_checkable
class FailureDetails(Protocol):
    """An ability: the failed items of a failed job, fetched once it ended (FullStory's
    errors page), attached to its event when the source asks for them."""

    @property
    def wants_failure_details(self) -> bool: ...

    def failure_details_url(self, kind: str, job_id: str) -> str:
        """A 202 there means: being prepared, ask again soon."""
        ...

    def failure_details(self, body: Any) -> dict[str, Any]:
        """The decoded 2xx body, bounded for an event."""
        ...


@dataclass(frozen=True)
class ListPage:
    """One page of a job list: (id, created_at) of each job, the next page's URL, and
    the host a next link named when it was not the configured one."""

    items: list[tuple[str, str | None]]
    next_url: str | None
    foreign_host: str | None = None


@dataclass(frozen=True)
class DiscoverySettings:
    since_s: float  # backfill window
    every_s: float  # between two looks
    max_watches: int  # jobs watched within poll.max_age at most


@runtime_checkable
class Discoverable(Protocol):
    """An ability: the upstream lists its jobs (Talkdesk's imports list), so new ones
    can be watched without anyone registering them."""

    @property
    def discovery(self) -> DiscoverySettings | None:
        """None: the source does not ask for discovery."""
        ...

    @property
    def kinds(self) -> tuple[str, ...]: ...

    def list_url(self, kind: str) -> str: ...

    def parse_list(self, body: Any, page_url: str) -> ListPage: ...

    async def auth_headers(self) -> dict[str, str]: ...

    async def on_unauthorized(self, headers: dict[str, str]) -> bool: ...


# Upstream JSON deeper than this is cut (kept as a marker): what is stored and sent
# on is written by orjson, which writes at most 254 levels, and no status lives deeper.
MAX_JSON_DEPTH = 64
TOO_DEEP = "…(nested too deep)"


def error_detail(body: bytes) -> str:
    """A short, safe description of an error body (the seeds' {message, code} shape)."""
    try:
        data = orjson.loads(body)
    except (ValueError, RecursionError):
        return "non-JSON body"
    if isinstance(data, dict):
        parts = [str(data[k])[:120] for k in ("code", "message") if isinstance(data.get(k), str)]
        if parts:
            return ": ".join(parts)
    return "unrecognised error body"


def classify(answer: HttpAnswer, now: float) -> UpstreamError:
    """The error for a non-2xx answer."""
    status = answer.status
    detail = error_detail(answer.body)
    if status == 404:
        return NotFoundError(f"404 {detail}", http_status=404)
    headers = {k.lower(): v for k, v in answer.headers.items()}
    if status == 429 or (status == 403 and rate_limit_403(headers)):
        wait = parse_retry_after(headers.get("retry-after"), now)
        if wait is None and status == 403:
            wait = parse_reset(headers.get("x-ratelimit-reset"), now)
        wait = DEFAULT_RETRY_AFTER_S if wait is None else min(wait, MAX_RETRY_AFTER_S)
        return RateLimitedError(f"{status} {detail}", retry_after_s=wait)
    if status in (401, 403):
        return AuthError(f"{status} {detail}", http_status=status, credentials=status == 401)
    return TransientUpstreamError(f"{status} {detail}", http_status=status)


def rate_limit_403(headers: dict[str, str]) -> bool:
    """A 403 that is a rate limit in disguise (GitHub's primary and secondary limits):
    it says when to come back, or that no requests are left."""
    return "retry-after" in headers or headers.get("x-ratelimit-remaining", "").strip() == "0"


def parse_reset(value: str | None, now: float) -> float | None:
    """Seconds until an X-RateLimit-Reset: unix seconds (GitHub), or seconds from now
    where the number is too small to be a date (other APIs); None when unreadable or
    already past (a clock apart: the default pause then holds)."""
    try:
        reset = float((value or "").strip())
    except ValueError:
        return None
    if not math.isfinite(reset) or reset <= 0:
        return None
    wait = reset if reset < 1e9 else reset - now
    return wait if wait > 0 else None


def decode_json(body: bytes) -> Any:
    """The answer as JSON, nesting cut at MAX_JSON_DEPTH (orjson itself refuses 1,024)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise TransientUpstreamError("malformed answer: not JSON (or nested too deep)") from None
    # Nesting is at most the number of brackets that open (some may sit in strings): a
    # body with fewer than MAX_JSON_DEPTH of them needs no walk, as nearly every one.
    if body.count(b"{") + body.count(b"[") <= MAX_JSON_DEPTH:
        return value
    try:
        return bounded_depth(value, MAX_JSON_DEPTH)
    except RecursionError:
        raise TransientUpstreamError("malformed answer: not JSON (or nested too deep)") from None


def bounded_depth(value: Any, max_depth: int) -> Any:
    """value with every container deeper than max_depth replaced by TOO_DEEP. Pure;
    recursion never goes past max_depth."""
    if max_depth <= 0:
        return TOO_DEEP if isinstance(value, dict | list) else value
    if isinstance(value, dict):
        return {k: bounded_depth(v, max_depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        return [bounded_depth(v, max_depth - 1) for v in value]
    return value


async def fetch_snapshot(
    provider: Provider,
    http: HttpClient,
    kind: str,
    job_id: str,
    now: float,
    before_send: Callable[[bool], Awaitable[None]] | None = None,
) -> JobSnapshot:
    """GET a job's status; one retry with fresh credentials after a 401. before_send
    runs right before each request (True for the retry), after its credentials are
    ready: the last word of the source's budget and pause, so polls that waited for a
    token (a refresh, another replica's, the token budget) do not go out together.
    Token requests have their own budget and check the pause themselves."""
    url = provider.job_url(kind, job_id)
    headers = await provider.auth_headers()
    if before_send is not None:
        await before_send(False)
    answer = await http.request("GET", url, headers=headers)
    if answer.status == 401 and await provider.on_unauthorized(headers):
        headers = await provider.auth_headers()
        if before_send is not None:
            await before_send(True)
        answer = await http.request("GET", url, headers=headers)
    if not 200 <= answer.status < 300:
        raise classify(answer, now)
    return provider.parse(decode_json(answer.body))


def first_problem(exc: ValidationError) -> str:
    """The first validation problem, named by its path; never echoes the value."""
    err = exc.errors(include_input=False, include_url=False)[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
