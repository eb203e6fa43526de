"""Pure timing policies of the poller: adaptive intervals, error backoff, Retry-After.

Every function here is deterministic given its arguments (randomness is passed in
as a number in [0, 1)), so property tests can pin them down.
"""

from __future__ import annotations

import math
from datetime import datetime
from email.utils import parsedate_to_datetime

GROWTH = 1.5  # geometric growth of the interval while a job shows no progress
ETA_MARGIN = 1.05  # poll just after the estimated completion, not just before it


def geometric_interval(polls: int, min_s: float, max_s: float) -> float:
    """Interval after `polls` answers without progress information: min·1.5ⁿ, capped."""
    if polls <= 0:
        return min_s
    # Compare in log space: 1.5**polls overflows long before polls is absurd.
    if polls * math.log(GROWTH) >= math.log(max_s / min_s):
        return max_s
    return min(max_s, min_s * GROWTH**polls)


def estimate_remaining(*, t0: float, done0: int, t: float, done: int, total: int) -> float | None:
    """Seconds until `done` reaches `total` at the rate observed since (t0, done0).

    None when there is no usable rate (no time passed, no progress, or no total).
    """
    if total <= 0 or t <= t0 or done <= done0:
        return None
    rate = (done - done0) / (t - t0)
    return max(0.0, (total - done) / rate)


def next_interval(*, polls: int, min_s: float, max_s: float, eta_s: float | None = None) -> float:
    """When to poll a job that is still running.

    With an estimate of the time left, poll shortly after it; otherwise back off
    geometrically. Always within [min_s, max_s].
    """
    if eta_s is not None and math.isfinite(eta_s):
        return min(max_s, max(min_s, eta_s * ETA_MARGIN))
    return geometric_interval(polls, min_s, max_s)


def error_backoff(errors: int, min_s: float, max_s: float, rand: float) -> float:
    """Full-jitter exponential backoff after `errors` consecutive failures, never below min_s.

    The ceiling doubles with each failure (min·2ⁿ⁻¹) up to max_s; the delay is drawn
    uniformly below it so that many jobs failing together spread out again.
    """
    if errors <= 1:
        ceiling = min_s
    elif (errors - 1) * math.log(2) >= math.log(max_s / min_s):
        ceiling = max_s
    else:
        ceiling = min(max_s, min_s * 2 ** (errors - 1))
    return max(min_s, ceiling * min(max(rand, 0.0), 1.0))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date.

    None when the header is absent or unreadable; never negative.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when: datetime = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, when.timestamp() - now)
