"""Pure decisions about one delivery attempt: what its answer means and when to retry."""

from __future__ import annotations

import enum
from dataclasses import dataclass

DEFAULT_SCHEDULE_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
JITTER = 0.2


class Verdict(enum.StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"  # failed; try again later
    GONE = "gone"  # 410: disable the subscription
    DEAD = "dead"  # failed and the schedule is used up


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay_s: float | None = None  # for RETRY


def classify(status: int | None) -> Verdict:
    """An answer (None: no answer at all) as succeeded, gone or worth a retry."""
    if status is not None and 200 <= status < 300:
        return Verdict.SUCCEEDED
    if status == 410:
        return Verdict.GONE
    return Verdict.RETRY  # 3xx (redirects are not followed), 4xx, 5xx, timeouts, refusals


def retry_delay(
    failures: int, schedule: tuple[float, ...], rand: float, jitter: float = JITTER
) -> float | None:
    """Delay before the next attempt after `failures` failed ones; None when used up.

    The n-th retry waits schedule[n-1] ± jitter (rand in [0, 1) picks where).
    """
    if failures < 1 or failures > len(schedule):
        return None
    base = schedule[failures - 1]
    return max(0.0, base * (1 - jitter + 2 * jitter * min(max(rand, 0.0), 1.0)))


def decide(
    *,
    status: int | None,
    failures_before: int,
    schedule: tuple[float, ...],
    retry_after_s: float | None,
    retry_after_cap_s: float,
    rand: float,
) -> Decision:
    """What to do after an attempt that got `status`, given the failures before it."""
    verdict = classify(status)
    if verdict is not Verdict.RETRY:
        return Decision(verdict)
    delay = retry_delay(failures_before + 1, schedule, rand)
    if delay is None:
        return Decision(Verdict.DEAD)
    if status in (429, 503) and retry_after_s is not None:
        # Never earlier than the receiver asked; never absurdly later.
        delay = max(delay, min(retry_after_s, retry_after_cap_s))
    return Decision(Verdict.RETRY, delay)
