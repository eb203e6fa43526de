"""Learned job durations: a compact histogram per source and kind, and the poll
interval it suggests. Pure: the store keeps the counts, this module reads them.

Buckets are log-spaced, BUCKETS_PER_DOUBLING per doubling from 1 s to a week (155
counters), so a histogram is a few kilobytes whatever the number of jobs and its
relative resolution is the same for a 20 s job and a 5 h one.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

BUCKETS_PER_DOUBLING = 8
MAX_DURATION_S = 7 * 86400.0
BUCKETS = math.ceil(BUCKETS_PER_DOUBLING * math.log2(MAX_DURATION_S)) + 1
# Below this many observed jobs the histogram says too little: the age policy rules.
MIN_HISTORY = 30
# The chance, per poll, that the job has ended since the previous one: polls crowd
# where jobs of this source and kind typically end (bench/efficiency.py).
CHANCE_PER_POLL = 0.08
# Past the point where this share of the observed jobs had ended, the job is outside
# what was learned: the age policy rules.
OUTSIDE = 0.98


def bucket_of(duration_s: float) -> int:
    """The bucket a duration falls in: [2^(i/8), 2^((i+1)/8)) seconds; bucket 0 also
    holds everything under 1 s and the last everything over a week."""
    if not duration_s > 1.0:  # also NaN
        return 0
    if math.isinf(duration_s):
        return BUCKETS - 1
    return min(BUCKETS - 1, int(BUCKETS_PER_DOUBLING * math.log2(duration_s)))


def bucket_start(i: int) -> float:
    return 0.0 if i <= 0 else math.pow(2.0, i / BUCKETS_PER_DOUBLING)


@dataclass(frozen=True, slots=True)
class Durations:
    """Observed durations: counts per bucket, and their running sum (the CDF's steps)."""

    counts: tuple[float, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def from_counts(cls, counts: Mapping[int, float]) -> Durations:
        dense = tuple(max(0.0, float(counts.get(i, 0.0))) for i in range(BUCKETS))
        return cls(dense, tuple(itertools.accumulate(dense)))

    @property
    def total(self) -> float:
        return self.cumulative[-1] if self.cumulative else 0.0

    def cdf(self, t: float) -> float:
        """Share of observed jobs that ended by t seconds (log-linear inside a bucket)."""
        if self.total <= 0 or t <= 0:
            return 0.0
        i = bucket_of(t)
        before = self.cumulative[i - 1] if i > 0 else 0.0
        lo, hi = bucket_start(i), bucket_start(i + 1)
        if i == 0:
            share = min(1.0, t / bucket_start(1))  # [0, 1.09 s): linear
        elif i == BUCKETS - 1:
            share = 1.0
        else:
            share = min(1.0, max(0.0, math.log(t / lo) / math.log(hi / lo)))
        return (before + self.counts[i] * share) / self.total

    def quantile(self, q: float) -> float:
        """The duration by which a share q of observed jobs had ended (inverse of cdf)."""
        if self.total <= 0:
            return math.inf
        target = min(max(q, 0.0), 1.0) * self.total
        i = min(BUCKETS - 1, bisect.bisect_left(self.cumulative, target))
        before = self.cumulative[i - 1] if i > 0 else 0.0
        inside = self.counts[i]
        share = 0.0 if inside <= 0 else min(1.0, max(0.0, (target - before) / inside))
        if i == 0:
            return share * bucket_start(1)
        if i == BUCKETS - 1:  # over a week: no upper bound to spread over
            return bucket_start(i)
        lo, hi = bucket_start(i), bucket_start(i + 1)
        return lo * math.pow(hi / lo, share)


def learned_interval(
    durations: Durations | None, age_s: float, chance: float = CHANCE_PER_POLL
) -> float | None:
    """Seconds until a job still running at age_s has ended with probability `chance`,
    by the learned durations: short where jobs typically end, long elsewhere. None when
    there is too little history, or the job is older than nearly all jobs seen (then
    the history says nothing about it)."""
    if durations is None or durations.total < MIN_HISTORY:
        return None
    done = durations.cdf(age_s)
    if done >= OUTSIDE:
        return None
    target = done + chance * (1.0 - done)
    return max(0.0, durations.quantile(target) - age_s)


def chance_of_end(durations: Durations | None, age_s: float, interval_s: float) -> float:
    """The chance that a job running at age_s ends within interval_s: from the learned
    durations when they say something about this age, else from the scale-free prior
    behind the lag target (the chance of ending is spread evenly over log time)."""
    age_s, interval_s = max(0.0, age_s), max(0.0, interval_s)
    if durations is not None and durations.total >= MIN_HISTORY:
        done = durations.cdf(age_s)
        if done < OUTSIDE:
            return min(1.0, max(0.0, (durations.cdf(age_s + interval_s) - done) / (1 - done)))
    return interval_s / (age_s + interval_s) if interval_s > 0 else 0.0
