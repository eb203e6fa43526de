"""Pure timing policies of the poller: adaptive intervals, error backoff, Retry-After.

Every function here is deterministic given its arguments (randomness is passed in
as a number in [0, 1)), so property tests can pin them down.
"""

from __future__ import annotations

import itertools
import math

# Changes of a job's count kept to estimate its rate: recent ones, so a queued start or
# an old speed soon stops counting (bench/efficiency.py: 6 beat 4 on p95 and tails).
PROGRESS_WINDOW = 6
# With an estimate, the next poll comes after this share of the time left: the polls
# close in on the estimated end instead of jumping to it, so a job that speeds up by
# up to 1/APPROACH is still seen within one short interval (bench/efficiency.py: 0.35
# has the p95 of 0.25 for fewer requests; 0.5 misses twice as late).
APPROACH = 0.35

# Counts beyond this are no progress information (a float could not hold them).
MAX_COUNT = 10**15

# (first seen, last seen, records done) at each count a job has shown, newest last.
Samples = tuple[tuple[float, float, int], ...]


def lag_interval(age_s: float, lag_target: float, min_s: float, max_s: float) -> float:
    """The interval that keeps time-to-notice within lag_target of the job's age: a job
    running for 10 minutes may be noticed a minute late, one of 20 s within 2 s. Costs
    about ln(D / min_s) / lag_target polls for a job of duration D."""
    return min(max_s, max(min_s, lag_target * max(0.0, age_s)))


def track_progress(samples: Samples, now: float, done: int | None) -> Samples:
    """Add a progress reading: a new count adds a sample, an unchanged one only moves its
    sample's last-seen time (a queue or a pause is not counted as slow work); a count
    that went back starts over; only the newest PROGRESS_WINDOW are kept."""
    if done is None:
        return samples
    if samples and done == samples[-1][2]:
        return (*samples[:-1], (samples[-1][0], now, done))
    if samples and done < samples[-1][2]:
        return ((now, now, done),)
    return (*samples, (now, now, done))[-PROGRESS_WINDOW:]


def read_progress(
    samples: Samples,
    *,
    now: float,
    created_at: float,
    total: int | None,
    done: int | None,
) -> tuple[Samples, float | None, float]:
    """One poll's progress reading → (samples to keep, estimated seconds left or None,
    seconds past the expected end). Complete counts: 0 left (the status follows any
    moment), past the end since they were first seen complete. Otherwise the end is
    projected from the last change of the count at the recent working rate; a job
    slower than that, or paused, is past its expected end and could resume at that
    rate any moment: the estimate is then the whole work left at that rate."""
    if not total or not 0 < total < MAX_COUNT:
        return samples, None, 0.0
    samples = track_progress(samples, now, done)
    if done is not None and done >= total:
        return samples, 0.0, now - (samples[-1][0] if samples else created_at)
    rate = working_rate(samples)
    if rate is None:
        return samples, None, 0.0
    changed_at, _, done_last = samples[-1]
    work_s = (total - done_last) / rate
    past = now - changed_at - work_s
    if past < 0:
        return samples, -past, 0.0
    return samples, work_s, past


def working_rate(samples: Samples) -> float | None:
    """Records per second over the recent changes of the count; None before two changes.
    Each change happened between the last sighting of the old count and the first of
    the new one: only those spans count, so time spent at one count (a queue, a pause)
    is left out. The first change says little (work may have started just before it
    was seen): the rate is measured from it, not up to it."""
    if len(samples) < 3:
        return None
    work_s = sum(new[0] - old[1] for old, new in itertools.pairwise(samples[1:]))
    gained = samples[-1][2] - samples[1][2]
    if work_s <= 0 or gained <= 0:
        return None
    return gained / work_s


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
    learned_s: float | None = None,
) -> tuple[float, str]:
    """When to poll a job that is still running, and why. With progress reported: after
    APPROACH of the estimated time left, closing in on the end ("eta"); past the
    expected end (overdue_s > 0: slower, or paused) no sooner than the lag target of how
    long that has lasted; never later than the lag target allows for a job of the
    expected duration (age + eta), so an estimate that is wrong costs a bounded lag.
    Counts complete but the status not terminal yet (eta 0): from min_s, growing by the
    lag target of how long that has lasted. Without progress: the lag target's interval
    of its age ("age"), or sooner where the learned durations say jobs like this one
    typically end (learned_s, "learned"). Always within [min_s, max_s]."""
    if eta_s is not None and math.isfinite(eta_s):
        if eta_s <= 0:  # the counts are complete, the status not yet: it ends any moment
            return lag_interval(overdue_s, lag_target, min_s, max_s), "eta"
        cap = lag_interval(age_s + eta_s, lag_target, min_s, max_s)
        # Past its expected end (slower, or paused): polls thin out by the lag target of
        # how long that has lasted, so a long pause costs few requests.
        step = max(eta_s * APPROACH, lag_target * overdue_s)
        if step <= cap:
            return min(max_s, max(min_s, step)), "eta"
        return cap, "age"
    interval = lag_interval(age_s, lag_target, min_s, max_s)
    if learned_s is not None and learned_s < interval:
        return max(min_s, learned_s), "learned"
    return interval, "age"


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
