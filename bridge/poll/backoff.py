"""Pure timing policies of the poller: adaptive intervals, error backoff, Retry-After.

Every function here is deterministic given its arguments (randomness is passed in
as a number in [0, 1)), so property tests can pin them down.
"""

from __future__ import annotations

import math
from datetime import datetime
from email.utils import parsedate_to_datetime

# Samples of a job's progress kept to estimate its rate: recent ones, so a queued start,
# a pause or a change of speed soon stops counting.
PROGRESS_WINDOW = 4
# With an estimate, the next poll comes after this share of the time left: the polls
# close in on the estimated end (an estimate is rarely exact) instead of jumping to it.
APPROACH = 0.5

Samples = tuple[tuple[float, int], ...]


def lag_interval(age_s: float, lag_target: float, min_s: float, max_s: float) -> float:
    """The interval that keeps time-to-notice within lag_target of the job's age: a job
    running for 10 minutes may be noticed a minute late, one of 20 s within 2 s. Costs
    about ln(D / min_s) / lag_target polls for a job of duration D."""
    return min(max_s, max(min_s, lag_target * max(0.0, age_s)))


def track_progress(samples: Samples, now: float, done: int | None) -> Samples:
    """Add a progress reading. An unchanged count moves the last sample forward (the
    job was still there at `now`: a queue or a pause is not counted as slow work); a
    count that went back starts over; only the newest PROGRESS_WINDOW are kept."""
    if done is None:
        return samples
    if samples and done < samples[-1][1]:
        return ((now, done),)
    if samples and done == samples[-1][1]:
        return (*samples[:-1], (now, done))
    return (*samples, (now, done))[-PROGRESS_WINDOW:]


def read_progress(
    samples: Samples,
    *,
    now: float,
    created_at: float,
    total: int | None,
    done: int | None,
) -> tuple[Samples, float | None, float]:
    """One poll's progress reading → (samples to keep, estimated seconds left or None,
    seconds the counts have been complete). Complete counts: 0 left (the status follows
    any moment). An unchanged count still gives an estimate, from a rate that slows as
    the pause lasts (coarse counts of a long job change only now and then)."""
    if not total:
        return samples, None, 0.0
    samples = track_progress(samples, now, done)
    if done is not None and done >= total:
        since = samples[-2][0] if len(samples) >= 2 else created_at
        return samples, 0.0, now - since
    return samples, remaining_from(samples, total), 0.0


def remaining_from(samples: Samples, total: int | None) -> float | None:
    """Seconds left at the rate of the recent samples; None without a usable rate.
    With two changes of the count or more, the rate is measured between changes only:
    the time before the first one (a queue, say) is not work."""
    if not total or len(samples) < 2:
        return None
    first = samples[1] if len(samples) >= 3 else samples[0]
    (t0, done0), (t, done) = first, samples[-1]
    return estimate_remaining(t0=t0, done0=done0, t=t, done=done, total=total)


def estimate_remaining(*, t0: float, done0: int, t: float, done: int, total: int) -> float | None:
    """Seconds until `done` reaches `total` at the rate observed since (t0, done0).

    None when there is no usable rate (no time passed, no progress, or no total).
    """
    if total <= 0 or t <= t0 or done <= done0:
        return None
    rate = (done - done0) / (t - t0)
    return max(0.0, (total - done) / rate)


def next_interval(
    *,
    age_s: float,
    lag_target: float,
    min_s: float,
    max_s: float,
    eta_s: float | None = None,
    overdue_s: float = 0.0,
) -> tuple[float, str]:
    """When to poll a job that is still running, and why. With progress reported: after
    APPROACH of the estimated time left, closing in on the end ("eta"), but never later
    than the lag target allows for a job of the expected duration (age + eta): an
    estimate that is wrong costs a bounded lag.
    Counts complete but the status not terminal yet: from min_s, growing by the lag
    target of how long that has lasted (overdue_s). Without progress, or stalled: the
    lag target's interval of its age ("age").
    Always within [min_s, max_s]."""
    if eta_s is not None and math.isfinite(eta_s):
        if eta_s <= 0:  # the counts are complete, the status not yet: it ends any moment
            return lag_interval(overdue_s, lag_target, min_s, max_s), "eta"
        cap = lag_interval(age_s + eta_s, lag_target, min_s, max_s)
        step = eta_s * APPROACH
        if step <= cap:
            return min(max_s, max(min_s, step)), "eta"
        return cap, "age"
    return lag_interval(age_s, lag_target, min_s, max_s), "age"


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
