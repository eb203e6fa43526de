"""Redis reachability as one log line per change, shared by every loop of a process."""

from __future__ import annotations

import time

import structlog

from bridge.metrics import Metrics

log = structlog.get_logger("bridge.redis")


class OutageLog:
    """One line per change of Redis reachability, shared by every loop of a process."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self.down_since: float | None = None

    def failed(self, where: str, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning(
                "redis_unavailable", where=where, error=type(exc).__name__, detail=_short(exc)
            )
            if self._metrics:
                self._metrics.redis_up.set(0)

    def succeeded(self) -> None:
        if self.down_since is not None:
            log.warning("redis_recovered", down_s=round(time.monotonic() - self.down_since, 3))
            self.down_since = None
        if self._metrics:
            self._metrics.redis_up.set(1)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""
