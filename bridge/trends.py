"""Fleet-wide trends for the console's charts: what every replica saw, counted per
five-minute bucket (store/trends.py keeps the buckets in Redis for a few hours).

A process adds to its Tally on the hot path (a dict increment) and the tally is
flushed every few seconds, so the charts cost one pipeline per flush, not a write per
poll. Pure: bucket arithmetic and the shaping of series for charts."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BUCKET_S = 300  # one bar or point of a chart
WINDOW_S = 6 * 3600  # what the overview draws
KEEP_S = WINDOW_S + 2 * BUCKET_S  # a bucket's key expires after this

# Time to notice (the upstream's finished time to the poll that saw it), the same
# bounds as the bridge_time_to_notice_seconds histogram; one more bucket beyond the last.
NOTICE_BOUNDS: tuple[float, ...] = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

SENT, DELIVERED, NOTICED = "sent:", "dlv:", "ttn:"
DELIVERY_OUTCOMES = ("succeeded", "retry", "gone", "dead")


def bucket_of(t: float) -> int:
    """The start (epoch seconds) of the bucket t falls in."""
    return int(t // BUCKET_S) * BUCKET_S


def notice_bucket(seconds: float) -> int:
    """The index of the first bound at or above seconds; len(NOTICE_BOUNDS) beyond them."""
    return bisect.bisect_left(NOTICE_BOUNDS, seconds)


def notice_labels() -> list[str]:
    """A label per time-to-notice bucket: ≤0.5s … ≤1h, >1h."""
    return [f"≤{_short(b)}" for b in NOTICE_BOUNDS] + [f">{_short(NOTICE_BOUNDS[-1])}"]


def _short(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    if seconds >= 60:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


class Tally:
    """What this process saw since its last flush: field → count."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def sent(self, source: str) -> None:
        """A request to a source's upstream (for its budget use over time)."""
        self._counts[SENT + source] += 1

    def delivered(self, outcome: str) -> None:
        """A delivery attempt's verdict (DELIVERY_OUTCOMES)."""
        self._counts[DELIVERED + outcome] += 1

    def noticed(self, seconds: float) -> None:
        """A job's end seen this long after the upstream says it ended."""
        self._counts[NOTICED + str(notice_bucket(seconds))] += 1

    def take(self) -> dict[str, int]:
        """Everything counted so far; the tally starts again from zero."""
        counts, self._counts = self._counts, Counter()
        return dict(counts)

    def give_back(self, counts: Mapping[str, int]) -> None:
        """A flush that failed: its counts go out with the next one."""
        self._counts.update(counts)


@dataclass(frozen=True)
class Trends:
    """The buckets of a window, oldest first: starts[i] and the counts in it."""

    starts: tuple[int, ...]
    counts: tuple[Mapping[str, int], ...]

    @classmethod
    def of(cls, now: float, window_s: int, read: Mapping[int, Mapping[str, int]]) -> Trends:
        """Every bucket of the window ending at now, empty ones included."""
        last = bucket_of(now)
        starts = tuple(range(last - window_s + BUCKET_S, last + 1, BUCKET_S))
        return cls(starts, tuple(read.get(s, {}) for s in starts))

    def series(self, prefix: str, names: Iterable[str]) -> dict[str, list[int]]:
        """name → its count per bucket, for the fields prefix+name."""
        return {n: [int(c.get(prefix + n, 0)) for c in self.counts] for n in names}

    def names(self, prefix: str) -> list[str]:
        """Every name counted under prefix in the window, sorted."""
        return sorted({f[len(prefix) :] for c in self.counts for f in c if f.startswith(prefix)})

    def notice_distribution(self) -> list[int]:
        """Jobs per time-to-notice bucket over the whole window."""
        out = [0] * (len(NOTICE_BOUNDS) + 1)
        for c in self.counts:
            for i in range(len(out)):
                out[i] += int(c.get(f"{NOTICED}{i}", 0))
        return out

    def budget_use(self, rates: Mapping[str, float], most: int) -> dict[str, list[float]]:
        """Requests sent per bucket as a share of each limited source's budget, for the
        `most` sources that used the largest share over the window."""
        use: dict[str, list[float]] = {}
        for name, sent in self.series(SENT, self.names(SENT)).items():
            rate = rates.get(name, 0.0)
            if rate > 0:
                use[name] = [n / (rate * BUCKET_S) for n in sent]
        busiest = sorted(use, key=lambda n: (-sum(use[n]), n))[:most]
        return {n: use[n] for n in sorted(busiest)}
