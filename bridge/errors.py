"""The bridge's exception tree. Library exceptions are translated once, at the edge.

BridgeError
├── ConfigError              bad configuration; one line per problem
├── NoSlot                   the source's budget has no slot soon (or it is paused)
├── StoreError               Redis did not do what was asked (store/redis_errors.py maps redis-py's)
│   └── StoreOutage          a state of Redis, said once and retried (503 from the API)
│       ├── StoreUnavailable     unreachable, or silent past the command timeout
│       └── StoreRefusesWrites   answers, but takes no writes: full (OOM) or read-only
└── UpstreamError            a poll did not yield a snapshot
    ├── TransientUpstreamError   5xx, timeout, connection, malformed body: back off per job
    ├── RateLimitedError         429: pause the whole source until retry_after_s
    ├── NotFoundError            404: counted; confirmed after several polls
    └── AuthError                401/403 after a token refresh: unhealthy (poll/health.py)
"""

from __future__ import annotations


class BridgeError(Exception):
    """Root of every error the bridge raises on purpose."""


class ConfigError(BridgeError):
    """The configuration cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class NoSlot(BridgeError):
    """The fleet-wide limiter has no slot within the horizon, or the source is paused:
    the request is not sent; ask again after retry_after_s."""

    def __init__(self, message: str, *, retry_after_s: float, paused: bool) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.paused = paused  # a 429 pause, rather than a budget with no slot soon


class StoreError(BridgeError):
    """Redis answered with an error the bridge did not foresee (a bug, logged).
    `cause_name` names the client library's own error (ConnectionError, TimeoutError,
    OutOfMemoryError…): what an operator reads in logs and /readyz."""

    def __init__(self, message: str, *, cause_name: str | None = None) -> None:
        super().__init__(message)
        self.cause_name = cause_name or type(self).__name__


def failure_name(exc: BaseException) -> str:
    """The name to show for a failure: a store error by what Redis or the connection
    said, anything else by its class."""
    return exc.cause_name if isinstance(exc, StoreError) else type(exc).__name__


class StoreOutage(StoreError):
    """Redis cannot do its part right now; every loop retries, the API answers 503."""


class StoreUnavailable(StoreOutage):
    """Redis is unreachable, or did not answer within the command timeout."""


class StoreRefusesWrites(StoreOutage):
    """Redis answers but takes no writes: full at maxmemory (noeviction), a read-only
    replica after a failover, or a failed RDB save (MISCONF)."""


class UpstreamError(BridgeError):
    """An upstream answer that is not a usable job snapshot."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class TransientUpstreamError(UpstreamError):
    """Worth retrying later for this job alone."""


class RateLimitedError(UpstreamError):
    """The upstream asked the whole source to slow down."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message, http_status=429)
        self.retry_after_s = retry_after_s


class NotFoundError(UpstreamError):
    """The upstream says the job does not exist (any more)."""


class AuthError(UpstreamError):
    """Refused even after a refresh: 401 or a token endpoint's refusal (credentials=True,
    the credentials themselves), or 403 (possibly this job alone)."""

    def __init__(self, message: str, *, http_status: int | None, credentials: bool) -> None:
        super().__init__(message, http_status=http_status)
        self.credentials = credentials
