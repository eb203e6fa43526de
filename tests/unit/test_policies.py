"""Property tests of the pure timing policies: intervals, backoff, Retry-After, GCRA."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import retry_after
from bridge.poll import backoff
from bridge.poll.ratelimit import late_allowance_s, limiter_burst, reserve

bounds = st.tuples(
    st.floats(0.01, 100, allow_nan=False), st.floats(1, 10_000, allow_nan=False)
).map(lambda t: (t[0], t[0] * t[1]))


@given(bounds, st.floats(0, 1e7), st.floats(0.001, 1))
def test_lag_interval_stays_in_bounds_and_grows_with_age(
    b: tuple[float, float], age: float, lag: float
) -> None:
    """Without progress the interval is the lag target of the age, within [min, max],
    and never shrinks as the job gets older."""
    lo, hi = b
    now = backoff.lag_interval(age, lag, lo, hi)
    later = backoff.lag_interval(age * 1.5 + 1, lag, lo, hi)
    assert lo <= now <= later <= hi
    if lo <= lag * age <= hi:
        assert now == pytest.approx(lag * age)


def test_lag_target_examples() -> None:
    """The issue's examples: 10 minutes → about a minute; 20 s → 2 s."""
    assert backoff.lag_interval(600, 0.1, 0.2, 300) == pytest.approx(60)
    assert backoff.lag_interval(20, 0.1, 0.2, 300) == pytest.approx(2)
    assert backoff.lag_interval(0, 0.1, 0.2, 300) == 0.2


@given(bounds, st.floats(0, 1e7), st.one_of(st.none(), st.floats(-1e9, 1e12)))
def test_next_interval_is_bounded(b: tuple[float, float], age: float, eta: float | None) -> None:
    """Whatever the estimate, the next poll is within [min, max]: never later than max."""
    lo, hi = b
    interval, reason = backoff.next_interval(
        age_s=age, lag_target=0.1, min_s=lo, max_s=hi, eta_s=eta
    )
    assert lo <= interval <= hi and reason in ("eta", "age")


@given(st.floats(2, 1000), st.floats(1, 5000))
def test_next_interval_closes_in_on_a_near_estimate(eta: float, span: float) -> None:
    """An estimated end within the lag target of the expected duration: poll after a
    share of the time left, closing in on it."""
    lo, hi = 0.5, eta * 2 + span
    age = 10 * eta  # the end is near relative to the job's length
    got, reason = backoff.next_interval(age_s=age, lag_target=0.1, min_s=lo, max_s=hi, eta_s=eta)
    assert got == pytest.approx(max(lo, eta * backoff.APPROACH)) and reason == "eta"


@given(st.floats(0, 1e5), st.floats(0.2, 1e5))
def test_a_far_estimate_is_capped_by_the_lag_target(age: float, eta: float) -> None:
    """Never later than the lag target allows for a job of the expected duration."""
    got, _ = backoff.next_interval(age_s=age, lag_target=0.1, min_s=0.2, max_s=1e9, eta_s=eta)
    assert got <= max(0.2, 0.1 * (age + eta)) + 1e-9


def test_complete_counts_are_polled_soon_then_less() -> None:
    """Counts complete, status not yet: poll at min_interval, then by the lag target of
    how long that has lasted, however old the job (an hour-old job is not put off 300 s)."""
    soon, reason = backoff.next_interval(
        age_s=3600, lag_target=0.1, min_s=2, max_s=300, eta_s=0, overdue_s=1
    )
    assert (soon, reason) == (2, "eta")
    later, _ = backoff.next_interval(
        age_s=3600, lag_target=0.1, min_s=2, max_s=300, eta_s=0, overdue_s=100
    )
    assert later == pytest.approx(10)


def read(
    samples: backoff.Samples, now: float, done: int, total: int = 100
) -> tuple[backoff.Samples, float | None, float]:
    return backoff.read_progress(samples, now=now, created_at=0.0, total=total, done=done)


def test_progress_from_recent_changes_not_the_queued_start() -> None:
    """A long queue at 0 records, then steady work: the rate is the work's, not the
    average since the first sample, and the first change alone gives no estimate (the
    work may have started just before it was seen)."""
    samples: backoff.Samples = ()
    for t in (0, 10, 20, 30):  # queued 30 s
        samples, eta, _ = read(samples, t, 0)
        assert eta is None
    assert samples == ((0, 30, 0),)
    samples, eta, _ = read(samples, 32, 20)
    assert eta is None
    samples, eta, _ = read(samples, 34, 40)  # 10 records/s since the first change
    assert eta == pytest.approx(6)
    samples, eta, _ = read(samples, 35, 60)  # 20 records/s lately: 13.3/s over the window
    assert eta == pytest.approx(40 / (40 / 3))


def test_a_pause_is_not_slow_work() -> None:
    """A count that stops moving does not lower the rate: the job could go on at its
    working rate any moment, so the estimate is the work left at that rate, and how long
    the job has been past its expected end is reported (the polls thin out by it)."""
    samples: backoff.Samples = ()
    for t, done in ((0, 0), (1, 10), (2, 20), (3, 30)):
        samples, eta, past = read(samples, t, done)
    assert (eta, past) == (pytest.approx(7), 0)
    samples, eta, past = read(samples, 5, 30)  # expected: 50 done by now
    assert (eta, past) == (pytest.approx(5), 0)
    samples, eta, past = read(samples, 100, 30)  # paused for 97 s
    assert eta == pytest.approx(7) and past == pytest.approx(90)
    samples, eta, past = read(samples, 101, 40)  # resumed
    assert eta is not None and eta < 7 and past == 0


def test_complete_counts_report_how_long_they_have_been_complete() -> None:
    """Counts complete: 0 left, and the time since they were first seen complete."""
    samples: backoff.Samples = ()
    for t, done in ((0, 0), (1, 50), (3, 100), (9, 100)):
        samples, eta, past = read(samples, t, done)
    assert (eta, past) == (0.0, 6)
    assert backoff.track_progress(samples, 10, 10) == ((10, 10, 10),)  # counts went back


def test_a_stalled_job_is_polled_less_and_less() -> None:
    """Past the expected end, the polls thin out by the lag target of the overrun: a
    job paused for an hour near its end costs tens of polls, not thousands."""
    short, _ = backoff.next_interval(
        age_s=100, lag_target=0.1, min_s=1, max_s=300, eta_s=5, overdue_s=0
    )
    long, reason = backoff.next_interval(
        age_s=3700, lag_target=0.1, min_s=1, max_s=300, eta_s=5, overdue_s=3600
    )
    assert short == pytest.approx(5 * backoff.APPROACH) and long > 100 and reason == "age"


@given(
    st.lists(st.tuples(st.floats(0.01, 100), st.integers(0, 50)), min_size=1, max_size=50),
    st.integers(1, 10_000),
)
def test_progress_window_is_bounded_and_ordered(steps: list[tuple[float, int]], total: int) -> None:
    """However the counts move, at most PROGRESS_WINDOW samples, in time order, and an
    estimate is never negative."""
    samples: backoff.Samples = ()
    t, done = 0.0, 0
    for dt, gained in steps:
        t += dt
        done += gained
        samples, eta, past = read(samples, t, done, total)
        assert len(samples) <= backoff.PROGRESS_WINDOW
        assert [s[0] for s in samples] == sorted(s[0] for s in samples)
        assert all(first <= last for first, last, _ in samples)
        assert eta is None or eta >= 0
        assert past >= 0


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.floats(0.1, 1000), st.integers(1, 10**6))
def test_estimate_remaining_matches_linear_progress(
    done0: int, gained: int, dt: float, total_extra: int
) -> None:
    """At a constant rate, the estimate is exactly the time the rest takes at that rate."""
    done = done0 + gained
    total = done + total_extra
    eta = backoff.estimate_remaining(t0=0.0, done0=done0, t=dt, done=done, total=total)
    if gained == 0:
        assert eta is None
    else:
        assert eta == pytest.approx(total_extra / (gained / dt))


def test_estimate_remaining_needs_progress_and_time() -> None:
    """No time passed, no total or a count going backwards gives no estimate."""
    assert backoff.estimate_remaining(t0=5, done0=0, t=5, done=10, total=100) is None
    assert backoff.estimate_remaining(t0=0, done0=0, t=5, done=10, total=0) is None
    assert backoff.estimate_remaining(t0=0, done0=50, t=5, done=10, total=100) is None


@given(bounds, st.integers(0, 1000), st.floats(0, 1))
def test_error_backoff_is_bounded(b: tuple[float, float], errors: int, r: float) -> None:
    """Backoff after errors stays within [min, max] for any jitter draw."""
    lo, hi = b
    assert lo <= backoff.error_backoff(errors, lo, hi, r) <= hi


@given(st.integers(1, 40))
def test_error_backoff_ceiling_doubles(errors: int) -> None:
    """The jitter ceiling (rand → 1) doubles per consecutive error until max: exponential."""
    lo, hi = 1.0, 2.0**20
    top = backoff.error_backoff(errors, lo, hi, 1.0)
    assert top == min(hi, lo * 2 ** (errors - 1))
    assert backoff.error_backoff(errors + 1, lo, hi, 1.0) == min(hi, 2 * top)


@settings(max_examples=50)
@given(st.floats(0, 10**6))
def test_retry_after_seconds(delta: float) -> None:
    """Delta-seconds are taken as they are."""
    assert retry_after.parse_retry_after(f"{delta}", now=0.0) == pytest.approx(delta)


def test_retry_after_http_date_and_garbage() -> None:
    """An HTTP-date counts from now; unreadable or missing headers give None; never negative."""
    now = 1_800_000_000.0
    assert retry_after.parse_retry_after(formatdate(now + 7, usegmt=True), now) == pytest.approx(7)
    assert retry_after.parse_retry_after(formatdate(now - 7, usegmt=True), now) == 0
    for bad in (None, "", "soon", "nan", "Mon, 99 Foo"):
        assert retry_after.parse_retry_after(bad, now) is None
    assert retry_after.parse_retry_after("-5", now) == 0


@given(
    st.floats(0.5, 50),
    st.integers(1, 10),
    st.lists(st.floats(0, 20_000, allow_nan=False), min_size=1, max_size=300),
)
def test_limiter_now_never_exceeds_rate_times_window_plus_burst(
    rate: float, burst_wish: int, arrivals: list[float]
) -> None:
    """With no horizon (a request now or not at all): over any window of W seconds, at
    most rate·W + burst requests are allowed, and waiting as told works."""
    burst = max(1, min(burst_wish, int(rate)))
    tat = None
    allowed: list[float] = []
    for t in sorted(arrivals):
        d = reserve(tat, t, rate, burst, 0)
        tat = d.tat_ms
        if d.granted:
            allowed.append(t)
        else:
            assert d.delay_ms > 0
            assert reserve(tat, t + d.delay_ms, rate, burst, 0).granted
    for i, start in enumerate(allowed):
        for j in range(i, len(allowed)):
            window_s = (allowed[j] - start) / 1000
            assert j - i + 1 <= rate * window_s + burst + 1e-9


def test_limiter_off_allows_everything() -> None:
    """A rate of 0 turns the limiter off."""
    assert all(reserve(None, t, 0, 1, 0).granted for t in range(100))


@given(
    rate=st.floats(0.5, 200),
    burst=st.integers(1, 5),
    horizon_ms=st.floats(0, 2000),
    gaps=st.lists(st.floats(0, 300), min_size=1, max_size=200),
)
def test_reserved_slots_respect_the_rate(
    rate: float, burst: int, horizon_ms: float, gaps: list[float]
) -> None:
    """However claims arrive, the send times handed out never exceed rate·W + burst in
    any window W, and none is further ahead than the horizon."""
    tat: float | None = None
    now = 0.0
    sends: list[float] = []
    for gap in gaps:
        now += gap
        r = reserve(tat, now, rate, burst, horizon_ms)
        tat = r.tat_ms
        if r.granted:
            assert 0 <= r.delay_ms <= horizon_ms + 1e-6
            sends.append(now + r.delay_ms)
    sends.sort()
    interval = 1000 / rate
    for i in range(len(sends)):
        for j in range(i, len(sends)):
            window = sends[j] - sends[i]
            assert j - i + 1 <= window / interval + burst + 1e-6


@settings(max_examples=300)
@given(
    rate=st.floats(0.5, 2000),
    burst=st.integers(1, 200),
    horizon_ms=st.floats(0, 2000),
    gaps=st.lists(st.floats(0, 300), min_size=1, max_size=150),
    lateness=st.lists(st.floats(0, 1), min_size=1, max_size=150),
)
def test_requests_late_within_the_allowance_keep_the_configured_bound(
    rate: float,
    burst: int,
    horizon_ms: float,
    gaps: list[float],
    lateness: list[float],
) -> None:
    """The limiter grants limiter_burst of the configured burst; requests that each go
    out up to late_allowance_s after their slots then send at most rate·W + burst in any
    window W (one more with a burst of 1: a slot's own jitter, as always)."""
    burst = max(1, min(burst, int(rate)))
    allowance_ms = late_allowance_s(rate, burst) * 1000
    tat: float | None = None
    now = 0.0
    sends: list[float] = []
    for k, gap in enumerate(gaps):
        now += gap
        r = reserve(tat, now, rate, limiter_burst(burst), horizon_ms)
        tat = r.tat_ms
        if r.granted:
            sends.append(now + r.delay_ms + lateness[k % len(lateness)] * allowance_ms)
    sends.sort()
    extra = 1 if burst == 1 else 0
    for i in range(len(sends)):
        for j in range(i, len(sends)):
            window_s = (sends[j] - sends[i]) / 1000
            assert j - i + 1 <= rate * window_s + burst + extra + 1e-6


def test_the_allowance_is_one_interval_at_least_and_none_without_a_limit() -> None:
    assert late_allowance_s(10, 1) == late_allowance_s(10, 2) == 0.1
    assert late_allowance_s(1000, 100) == 0.05 and limiter_burst(100) == 50
    assert late_allowance_s(0, 5) == float("inf")


def test_reservations_use_the_whole_budget() -> None:
    """With demand above the budget and claims every 200 ms, a 500 ms horizon hands out
    the full rate (the tick no longer caps it at burst per tick)."""
    rate, tat = 10.0, None
    granted = 0
    for tick in range(50):  # 10 s of claims, each asking for as many slots as it can get
        now = tick * 200.0
        while True:
            r = reserve(tat, now, rate, 1, 500.0)
            tat = r.tat_ms
            if not r.granted:
                break
            granted += 1
    assert granted >= 0.95 * rate * 10
