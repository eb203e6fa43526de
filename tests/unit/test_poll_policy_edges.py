"""The poller's timing and priority policies at their edges: exact answers where a comparison, a
constant or a clamp decides (what the property tests in test_policies.py leave open)."""

from __future__ import annotations

import math

import pytest

from bridge.poll.backoff import (
    MAX_COUNT,
    error_backoff,
    estimate_remaining,
    next_interval,
    read_progress,
    track_progress,
    working_rate,
)
from bridge.poll.duration_policy import chance_of_end
from bridge.poll.priority import poll_worth, priority_key
from bridge.poll.ratelimit import Reservation, outside_claim_wait_s, reserve


def test_no_reading_keeps_the_samples_as_they_are() -> None:
    samples = ((1.0, 2.0, 5),)
    assert track_progress(samples, 9.0, None) is samples


@pytest.mark.parametrize("total", [None, 0, -5, MAX_COUNT, MAX_COUNT + 1])
def test_no_usable_total_is_no_progress_information(total: int | None) -> None:
    """No total, or one no float can hold: nothing learned, nothing tracked."""
    samples = ((1.0, 2.0, 5),)
    assert read_progress(samples, now=9.0, created_at=0.0, total=total, done=7) == (
        samples,
        None,
        0.0,
    )


def test_a_total_of_one_and_a_large_one_are_counts() -> None:
    assert read_progress((), now=5.0, created_at=0.0, total=1, done=1) == (
        ((5.0, 5.0, 1),),
        0.0,
        0.0,
    )
    big = 10**12  # well past what a mistaken 10*15 would allow
    assert read_progress((), now=5.0, created_at=0.0, total=big, done=big)[1] == 0.0


def test_counts_complete_are_zero_left_and_past_since_first_seen_complete() -> None:
    samples = ((10.0, 10.0, 40),)
    kept, left, past = read_progress(samples, now=30.0, created_at=0.0, total=50, done=50)
    assert kept == ((10.0, 10.0, 40), (30.0, 30.0, 50))
    assert (left, past) == (0.0, 0.0)
    kept, left, past = read_progress(kept, now=42.0, created_at=0.0, total=50, done=50)
    assert (left, past) == (0.0, 12.0)  # complete since 30


def test_before_a_rate_there_is_no_estimate() -> None:
    assert read_progress((), now=3.0, created_at=0.0, total=100, done=10) == (
        ((3.0, 3.0, 10),),
        None,
        0.0,
    )


def three_changes(last_at: float) -> tuple[tuple[float, float, int], ...]:
    """Counts 0, 10, 20: 10 records over 10 s of work, then the last change at last_at."""
    return ((0.0, 0.0, 0), (10.0, 10.0, 10), (last_at, last_at, 20))


def test_the_end_is_projected_from_the_last_change() -> None:
    # rate 1/s (10 records between seen-at 10 and 20), 80 left: the end at 100
    samples = three_changes(20.0)
    assert working_rate(samples) == 1.0
    assert read_progress(samples, now=60.0, created_at=0.0, total=100, done=20)[1:] == (40.0, 0.0)
    # exactly at the expected end: it could resume at that rate any moment
    assert read_progress(samples, now=100.0, created_at=0.0, total=100, done=20)[1:] == (
        80.0,
        0.0,
    )
    # half a second late: the whole work left at that rate, and how late
    assert read_progress(samples, now=100.5, created_at=0.0, total=100, done=20)[1:] == (
        80.0,
        0.5,
    )


def test_a_rate_needs_work_time_and_gained_records() -> None:
    assert working_rate(((0.0, 0.0, 0), (1.0, 5.0, 10))) is None  # one change
    assert working_rate(((0.0, 0.0, 0), (5.0, 5.0, 10), (5.0, 5.0, 20))) is None  # no time
    assert working_rate(((0.0, 0.0, 30), (5.0, 6.0, 20), (7.0, 7.0, 20))) is None  # no gain
    assert working_rate(((0.0, 0.0, 0), (5.0, 6.0, 10), (7.0, 7.0, 11))) == 1.0  # 1 in 1 s


def test_remaining_time_at_the_observed_rate() -> None:
    assert estimate_remaining(t0=10.0, done0=20, t=20.0, done=40, total=100) == 30.0
    assert estimate_remaining(t0=0.0, done0=0, t=10.0, done=1, total=1) == 0.0
    assert estimate_remaining(t0=0.0, done0=0, t=10.0, done=1, total=0) is None
    assert estimate_remaining(t0=10.0, done0=0, t=10.0, done=5, total=9) is None
    assert estimate_remaining(t0=0.0, done0=5, t=10.0, done=5, total=9) is None


LIMITS = {"lag_target": 0.1, "min_s": 2.0, "max_s": 300.0}


def test_complete_counts_poll_from_the_minimum_growing_with_the_wait() -> None:
    assert next_interval(age_s=500.0, eta_s=0.0, **LIMITS) == (2.0, "eta")
    assert next_interval(age_s=500.0, eta_s=0.0, overdue_s=100.0, **LIMITS) == (10.0, "eta")


def test_a_short_estimate_closes_in_on_the_end() -> None:
    assert next_interval(age_s=100.0, eta_s=0.5, **LIMITS) == (2.0, "eta")
    assert next_interval(age_s=100.0, eta_s=20.0, **LIMITS) == (7.0, "eta")
    assert next_interval(age_s=100.0, eta_s=math.inf, **LIMITS) == (10.0, "age")


def test_a_long_estimate_is_capped_by_the_lag_target_of_the_expected_duration() -> None:
    # age 10 + eta 100: a job of 110 s may be noticed 11 s late; 35 s would be too late
    assert next_interval(age_s=10.0, eta_s=100.0, **LIMITS) == (11.0, "age")
    # the step equal to the cap is taken as a step
    assert next_interval(age_s=0.0, eta_s=40.0, lag_target=0.35, min_s=1.0, max_s=300.0) == (
        14.0,
        "eta",
    )


def test_learned_durations_poll_sooner_never_below_the_minimum() -> None:
    assert next_interval(age_s=100.0, learned_s=4.0, **LIMITS) == (4.0, "learned")
    assert next_interval(age_s=100.0, learned_s=1.0, **LIMITS) == (2.0, "learned")
    assert next_interval(age_s=100.0, learned_s=10.0, **LIMITS) == (10.0, "age")


@pytest.mark.parametrize(("errors", "ceiling"), [(0, 2.0), (1, 2.0), (2, 4.0), (3, 8.0), (9, 60.0)])
def test_error_backoff_draws_below_a_doubling_ceiling(errors: int, ceiling: float) -> None:
    assert error_backoff(errors, 2.0, 60.0, 0.5) == max(2.0, ceiling * 0.5)
    assert error_backoff(errors, 2.0, 60.0, 0.999) == pytest.approx(max(2.0, ceiling * 0.999))
    assert error_backoff(errors, 2.0, 60.0, 7.0) == ceiling  # rand clamped to 1
    assert error_backoff(errors, 2.0, 60.0, -1.0) == 2.0  # and to 0


def test_error_backoff_survives_a_huge_count() -> None:
    assert error_backoff(100_000, 2.0, 60.0, 0.5) == 30.0


def test_a_polls_worth_from_its_estimate_is_the_share_of_time_left_it_covers() -> None:
    assert poll_worth(age_s=50.0, interval_s=5.0, eta_s=10.0) == 0.5
    assert poll_worth(age_s=50.0, interval_s=20.0, eta_s=10.0) == 1.0  # covers it all
    assert poll_worth(age_s=50.0, interval_s=5.0, eta_s=0.0) == 1.0  # ends any moment
    assert poll_worth(age_s=50.0, interval_s=5.0, eta_s=-3.0) == 1.0


def test_without_an_estimate_a_polls_worth_is_the_chance_of_the_end() -> None:
    for age, interval in ((1.0, 2.0), (30.0, 10.0), (600.0, 60.0)):
        expected = chance_of_end(None, age, interval)
        assert poll_worth(age_s=age, interval_s=interval) == expected
        assert 0.0 < expected < 1.0


def test_the_priority_key_brings_a_poll_forward_by_its_worth() -> None:
    assert priority_key(100.0, 0.5, 10.0) == 95.0
    assert priority_key(100.0, 1.0, 10.0) == 90.0
    assert priority_key(100.0, 3.0, 10.0) == 90.0  # worth at most 1
    assert priority_key(100.0, -2.0, 10.0) == 100.0  # and at least 0
    assert priority_key(100.0, 0.0, 10.0) == 100.0


def test_a_request_outside_the_claim_waits_at_least_ten_seconds_or_two_intervals() -> None:
    assert outside_claim_wait_s(1.0) == 10.0
    assert outside_claim_wait_s(0.5) == 10.0
    assert outside_claim_wait_s(0.1) == 20.0
    assert outside_claim_wait_s(0.0) == 10.0
    assert outside_claim_wait_s(-1.0) == 10.0
    assert outside_claim_wait_s(math.inf) == 10.0
    assert outside_claim_wait_s(math.nan) == 10.0


@pytest.mark.parametrize("rate", [0.0, -1.0, math.inf, math.nan])
def test_no_limit_grants_at_once_and_keeps_the_state(rate: float) -> None:
    assert reserve(None, 1000.0, rate, 1, 0.0) == Reservation(True, 1000.0, 0.0)
    assert reserve(2500.0, 1000.0, rate, 1, 0.0) == Reservation(True, 2500.0, 0.0)


def test_a_slot_within_the_horizon_and_the_one_beyond() -> None:
    # 2 per second, burst 1: the next slot 500 ms after the last
    first = reserve(None, 1000.0, 2.0, 1, 0.0)
    assert first == Reservation(True, 1500.0, 0.0)
    assert reserve(first.tat_ms, 1000.0, 2.0, 1, 600.0) == Reservation(True, 2000.0, 500.0)
    assert reserve(first.tat_ms, 1000.0, 2.0, 1, 500.0) == Reservation(True, 2000.0, 500.0)
    assert reserve(first.tat_ms, 1000.0, 2.0, 1, 499.6) == Reservation(False, 1500.0, 1)
    # a burst of 3 lets two more go at once
    assert reserve(1500.0, 1000.0, 2.0, 3, 0.0) == Reservation(True, 2000.0, 0.0)
    assert reserve(1000.0, 3000.0, 2.0, 1, 0.0) == Reservation(True, 3500.0, 0.0)  # idle


def test_a_count_no_float_holds_exactly_is_no_information() -> None:
    assert read_progress((), now=1.0, created_at=0.0, total=2**53 + 1, done=1) == ((), None, 0.0)


def test_estimates_under_a_second_and_small_minimums() -> None:
    fine = {"lag_target": 0.5, "min_s": 0.1, "max_s": 300.0}
    assert next_interval(age_s=100.0, eta_s=0.0, **fine) == (0.1, "eta")  # no wait yet
    assert next_interval(age_s=100.0, eta_s=0.9, **fine)[0] == pytest.approx(0.9 * 0.35)


def test_error_backoff_with_a_minimum_under_a_second() -> None:
    assert error_backoff(6, 0.5, 60.0, 0.5) == 8.0  # ceiling 0.5 · 2⁵ = 16
    assert error_backoff(9, 0.5, 60.0, 0.5) == 30.0  # 0.5 · 2⁸ = 128: the maximum


def test_a_reservation_cannot_be_changed() -> None:
    slot = reserve(None, 0.0, 1.0, 1, 0.0)
    with pytest.raises(AttributeError):
        slot.granted = False  # type: ignore[misc]


def test_an_estimate_under_a_second_is_not_an_end() -> None:
    assert poll_worth(age_s=50.0, interval_s=0.25, eta_s=0.5) == 0.5
