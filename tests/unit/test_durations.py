"""Property tests of the learned-duration histogram and the intervals it suggests."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.poll import backoff
from bridge.poll.duration_policy import (
    BUCKETS,
    MIN_HISTORY,
    Durations,
    bucket_of,
    chance_of_end,
    learned_interval,
)

durations_s = st.floats(0, 1e7, allow_nan=False)


def histogram(values: list[float]) -> Durations:
    counts: dict[int, float] = {}
    for v in values:
        counts[bucket_of(v)] = counts.get(bucket_of(v), 0) + 1
    return Durations.from_counts(counts)


@given(durations_s, durations_s)
def test_buckets_are_ordered_and_bounded(a: float, b: float) -> None:
    """Longer durations never fall in an earlier bucket; every bucket index is valid."""
    lo, hi = sorted((a, b))
    assert 0 <= bucket_of(lo) <= bucket_of(hi) < BUCKETS
    assert bucket_of(math.nan) == 0


def test_a_bucket_is_an_eighth_of_a_doubling() -> None:
    """About 9 % wide: 101 s and 107 s share a bucket, 101 s and 110 s do not."""
    assert bucket_of(101) == bucket_of(107)
    assert bucket_of(101) != bucket_of(110)


@given(st.lists(st.floats(0, 6e5), min_size=1, max_size=200), st.floats(0, 1))
def test_cdf_and_quantile_are_monotone_inverses(values: list[float], q: float) -> None:
    """The CDF rises from 0 to 1, and quantile(q) is where it reaches q (within a bucket)."""
    d = histogram(values)
    points = sorted({0.5, 1, 10, 100, 1e3, 1e4, 1e5, 1e6, *values})
    cdfs = [d.cdf(t) for t in points]
    assert cdfs == sorted(cdfs) and cdfs[0] >= 0 and cdfs[-1] == pytest.approx(1)
    t = d.quantile(q)
    assert d.cdf(t) == pytest.approx(q, abs=1e-6) or q == 0


def test_intervals_crowd_where_jobs_typically_end() -> None:
    """Jobs of this kind take 5 minutes, give or take 10 %: around 5 minutes the polls
    are far denser than the lag target's, far from it they are not."""
    rng = random.Random(1)
    d = histogram([rng.gauss(300, 30) for _ in range(500)])
    near = learned_interval(d, 290)
    assert near is not None and near < 0.2 * backoff.lag_interval(290, 0.1, 1, 300)
    early = learned_interval(d, 30)
    assert early is not None and early > backoff.lag_interval(30, 0.1, 1, 300)


def test_no_history_or_outside_it_says_nothing() -> None:
    """A cold start, and a job older than nearly every job seen: no learned interval."""
    assert learned_interval(None, 10) is None
    assert learned_interval(histogram([100.0] * (MIN_HISTORY - 1)), 10) is None
    d = histogram([100.0] * 200)
    assert learned_interval(d, 10) is not None
    assert learned_interval(d, 500) is None


@given(
    st.lists(st.floats(1, 1e5), min_size=MIN_HISTORY, max_size=100), durations_s, st.floats(0, 1e5)
)
def test_chance_of_end_is_a_probability(values: list[float], age: float, interval: float) -> None:
    """With or without history, the chance lies in [0, 1] and grows with the interval."""
    d = histogram(values)
    for hist in (d, None):
        small, large = chance_of_end(hist, age, interval), chance_of_end(hist, age, interval * 2)
        assert 0 <= small <= large <= 1


def test_the_prior_matches_the_lag_target() -> None:
    """Without history, an interval of 10 % of the age is a 1-in-11 chance, at any age."""
    assert chance_of_end(None, 20, 2) == pytest.approx(chance_of_end(None, 600, 60))
    assert chance_of_end(None, 600, 60) == pytest.approx(1 / 11)


def test_odd_durations_have_a_bucket() -> None:
    """Zero, negative, NaN and infinite durations land in the first or last bucket."""
    assert bucket_of(-5) == bucket_of(0) == bucket_of(math.nan) == 0
    assert bucket_of(math.inf) == BUCKETS - 1


def test_the_first_bucket_is_consistent() -> None:
    """Everything under 1.09 s is one bucket, spread evenly: the CDF never steps back."""
    d = histogram([0.5] * 10)
    assert d.cdf(1.05) < 1 and d.cdf(1.05) <= d.cdf(1.1) == pytest.approx(1)
