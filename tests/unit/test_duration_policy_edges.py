"""The learned-durations policy at its edges: bucket bounds, the CDF and its inverse
inside and at the ends of the histogram, and when history says nothing (the property
tests in test_durations.py check the shapes; these pin the boundaries)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from bridge.poll.duration_policy import (
    BUCKETS,
    BUCKETS_PER_DOUBLING,
    CHANCE_PER_POLL,
    MAX_DURATION_S,
    MIN_HISTORY,
    OUTSIDE,
    Durations,
    bucket_of,
    bucket_start,
    chance_of_end,
    learned_interval,
)

WEEK = 7 * 86400.0


def test_buckets_are_eighths_of_a_doubling_from_one_second_to_a_week() -> None:
    assert bucket_of(1.0) == 0 and bucket_of(0.2) == 0 and bucket_of(math.nan) == 0
    assert bucket_of(2 ** (1 / 8) * 1.0001) == 1
    assert bucket_of(2.0) == 8 and bucket_of(4.0) == 16
    assert bucket_of(WEEK * 0.9) < BUCKETS - 1
    assert bucket_of(WEEK * 1.2) == BUCKETS - 1 == bucket_of(math.inf) == bucket_of(1e12)
    assert bucket_start(0) == 0.0 == bucket_start(-3)
    assert bucket_start(1) == 2 ** (1 / 8) and bucket_start(8) == 2.0


def two_humps() -> Durations:
    """Half the jobs end in [2 s, 2.18 s), half in [4 s, 4.36 s)."""
    return Durations.from_counts({8: 10, 16: 10})


def test_the_cdf_inside_and_between_buckets() -> None:
    d = two_humps()
    assert d.total == 20
    assert d.cdf(0.0) == 0.0 and d.cdf(-1.0) == 0.0 and d.cdf(1.5) == 0.0
    assert d.cdf(2.0) == 0.0  # a bucket's start: none of it yet
    assert d.cdf(2 ** (1 + 1 / 16)) == pytest.approx(0.25)  # half-way through, in log time
    assert d.cdf(4.0) == 0.5
    assert d.cdf(5.0) == 1.0
    assert Durations.from_counts({}).cdf(5.0) == 0.0
    assert Durations.from_counts({3: -5, 8: 10}).total == 10  # a negative count is none


def test_the_first_bucket_is_linear_and_the_last_has_no_end() -> None:
    short = Durations.from_counts({0: 10})
    assert short.cdf(0.5) == pytest.approx(0.5 / 2 ** (1 / 8))
    assert short.cdf(1.05) == pytest.approx(1.05 / 2 ** (1 / 8))
    assert short.quantile(0.5) == pytest.approx(0.5 * 2 ** (1 / 8))
    long = Durations.from_counts({BUCKETS - 1: 40})
    assert long.cdf(1e7) == 1.0
    assert long.quantile(0.5) == bucket_start(BUCKETS - 1)


def test_the_quantile_inverts_the_cdf_and_clamps_its_share() -> None:
    d = two_humps()
    assert d.quantile(0.25) == pytest.approx(2 ** (1 + 1 / 16))
    assert d.quantile(0.75) == pytest.approx(2 ** (2 + 1 / 16))
    assert d.quantile(7.0) == pytest.approx(2 ** (17 / 8))  # at most all of them
    assert d.quantile(-1.0) == 0.0
    assert Durations.from_counts({}).quantile(0.5) == math.inf


def test_learned_intervals_need_history_and_an_age_inside_it() -> None:
    assert learned_interval(None, 1.0) is None
    few = Durations.from_counts({8: MIN_HISTORY - 1})
    assert learned_interval(few, 1.0) is None
    enough = Durations.from_counts({8: MIN_HISTORY})
    expected = 2.0 * (2 ** (1 / 8)) ** 0.08  # where 8 % of them have ended
    assert learned_interval(enough, 0.0) == pytest.approx(expected)
    assert learned_interval(enough, 0.0, chance=0.5) == pytest.approx(2 ** (1 + 1 / 16))
    assert learned_interval(enough, 2.2) is None  # older than all of them
    almost = Durations.from_counts({8: 98, 30: 2})
    assert almost.cdf(2.2) == OUTSIDE
    assert learned_interval(almost, 2.2) is None
    assert learned_interval(two_humps_of(MIN_HISTORY), 3.0) == pytest.approx(
        2 ** (2 + 0.08 / 8) - 3.0
    )


def two_humps_of(n: int) -> Durations:
    return Durations.from_counts({8: n, 16: n})


def test_the_chance_of_the_end_from_history_and_from_the_prior() -> None:
    assert chance_of_end(None, 10.0, 10.0) == 0.5  # evenly over log time
    assert chance_of_end(None, 10.0, 0.0) == 0.0
    assert chance_of_end(None, -5.0, 10.0) == 1.0  # a negative age is none
    assert chance_of_end(None, 10.0, -1.0) == 0.0
    d = two_humps_of(50)
    assert chance_of_end(d, 1.0, 3.0) == 0.5  # half of them end by 4 s
    assert chance_of_end(d, 3.0, 100.0) == 1.0  # all the rest
    assert chance_of_end(d, 3.0, 0.5) == 0.0
    assert chance_of_end(d, 60.0, 60.0) == 0.5  # outside history: the prior
    assert chance_of_end(two_humps_of(10), 1.0, 3.0) == 0.75  # too few: the prior


def test_the_readme_describes_these_histograms() -> None:
    """Histograms already in Redis are read with these numbers, and the README promises
    them: 8 buckets per doubling, at most 155 counters, 30 jobs of history, the next
    poll at an 8 % chance of the end, none past 98 % of the jobs seen."""
    text = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    found = re.search(
        r"(\d+) per doubling from 1 s to a week: at most (\d+) counters.*?With (\d+) jobs or "
        r"more of history.*?reaches (\d+) %.*?older than (\d+) % of those seen",
        text,
    )
    assert found, "the README's learned-durations paragraph changed"
    per, counters, history, chance, outside = (int(g) for g in found.groups())
    assert (per, counters, history) == (BUCKETS_PER_DOUBLING, BUCKETS, MIN_HISTORY)
    assert (chance / 100, outside / 100) == (CHANCE_PER_POLL, OUTSIDE)
    assert bucket_of(MAX_DURATION_S) == BUCKETS - 2  # a week is in the last bucket but one


def test_a_histogram_read_is_not_changed_by_its_readers() -> None:
    d = two_humps()
    with pytest.raises(AttributeError):
        d.counts = ()  # type: ignore[misc]
    assert Durations((), ()).total == 0.0
