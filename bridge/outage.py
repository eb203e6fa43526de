"""Loop failures as one log line per change, not a traceback per tick.

Redis has two states of trouble, each said once when it starts and once when it ends:
- unreachable or silent (`redis_unavailable` … `redis_recovered`): ended by any call
  that Redis answers;
- answering but refusing writes, full at maxmemory or a read-only replica
  (`redis_refusing_writes` … `redis_accepting_writes`): ended only by a write that
  went through (reads keep working meanwhile, and must not end it).
Any other failure of a loop (a bug) keeps its traceback, at most once a minute per loop.
"""

from __future__ import annotations

import time

import structlog

from bridge.errors import StoreRefusesWrites, StoreUnavailable, failure_name
from bridge.metrics import Metrics
from bridge.store.connection import COMMAND_TIMEOUT_S

log = structlog.get_logger("bridge.redis")

REPEAT_AFTER_S = 60.0  # the same loop's other failures are logged again after this
# A call sent while Redis was silent can time out just after another call found it
# back: that is the outage that ended, not a new one (a pool wait, then a command).
LATE_FAILURE_S = 2 * COMMAND_TIMEOUT_S


class OutageLog:
    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self.down_since: float | None = None
        self.refusing_since: float | None = None
        self._recovered_at = float("-inf")
        self._said: dict[str, float] = {}

    def failed(self, where: str, exc: BaseException) -> None:
        if isinstance(exc, StoreRefusesWrites):
            if self.refusing_since is None:
                self.refusing_since = time.monotonic()
                log.warning("redis_refusing_writes", where=where, detail=_short(exc))
            return
        if not isinstance(exc, StoreUnavailable):
            now = time.monotonic()
            if now - self._said.get(where, -REPEAT_AFTER_S) >= REPEAT_AFTER_S:
                self._said[where] = now
                log.error("loop_failed", where=where, exc_info=exc)
            return
        if self.down_since is None:
            if time.monotonic() - self._recovered_at < LATE_FAILURE_S:
                return  # a call of the outage that just ended
            self.down_since = time.monotonic()
            log.warning(
                "redis_unavailable", where=where, error=failure_name(exc), detail=_short(exc)
            )
            if self._metrics:
                self._metrics.redis_up.set(0)

    def succeeded(self) -> None:
        if self.down_since is not None:
            log.warning("redis_recovered", down_s=round(time.monotonic() - self.down_since, 3))
            self.down_since = None
            self._recovered_at = time.monotonic()
        if self._metrics:
            self._metrics.redis_up.set(1)

    def wrote(self) -> None:
        """A write went through: Redis answers and takes writes again."""
        self.succeeded()
        if self.refusing_since is not None:
            refused_s = round(time.monotonic() - self.refusing_since, 3)
            log.warning("redis_accepting_writes", refused_s=refused_s)
            self.refusing_since = None


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""
