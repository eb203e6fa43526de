"""Requests per job against time-to-notice, for the bridge's scheduling and the usual
alternatives, on one simulated day: the daemon's own policy functions
(bridge.poll.backoff, bridge.poll.duration_policy, bridge.poll.priority,
bridge.poll.ratelimit.reserve) driven on a virtual clock.

    .venv/bin/python bench/efficiency.py [--jobs 10000] [--rate 6] [--seed 7] [--png FILE]

The workload: jobs arriving over a day with two peak hours; four kinds of job, each
with its own typical duration (45 s, 6 min, 40 min, 2.5 h, log-normal around it), one
job in ten an outlier from a broad log-normal, all cut to 10 s - 6 h; at noon the
6-minute kind starts taking twice as long. Half report progress (a queued start, speed
changes, pauses), half report nothing. One source with `rate` requests per second,
shared by all jobs: when more polls are due than it allows, each policy serves them
in its order (the bridge: by priority; the others: first due, first served).
Each policy is reported as requests per job, p50/p95/p99 time-to-notice, and the share
of minutes in which more polls were due than the budget allowed.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import importlib.util
import itertools
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.poll import backoff, priority
from bridge.poll.duration_policy import Durations, bucket_of, learned_interval
from bridge.poll.ratelimit import reserve
from bridge.store.durations import GENERATION

DAY_S = 86400.0
MIN_S, MAX_S = 2.0, 300.0
KINDS = (45.0, 360.0, 2400.0, 9000.0)  # typical duration of each kind, seconds


@dataclass
class Job:
    created: float
    duration: float
    progress: bool
    kind: int = 0
    total: int = 0
    knots: list[float] = field(default_factory=list)  # times (relative) of the work curve
    work: list[float] = field(default_factory=list)  # cumulative share of work at each knot

    @property
    def end(self) -> float:
        return self.created + self.duration

    def done_at(self, t: float) -> int:
        """Records done at absolute time t (the piecewise-linear work curve)."""
        rel = t - self.created
        if rel >= self.duration:
            return self.total
        i = bisect.bisect_right(self.knots, rel) - 1
        if i < 0:
            return 0
        t0, t1 = self.knots[i], self.knots[min(i + 1, len(self.knots) - 1)]
        w0, w1 = self.work[i], self.work[min(i + 1, len(self.work) - 1)]
        share = w0 if t1 <= t0 else w0 + (w1 - w0) * (rel - t0) / (t1 - t0)
        return min(self.total - 1, int(self.total * share))


def workload(n: int, rng: random.Random) -> list[Job]:
    jobs = []
    for _ in range(n):
        if rng.random() < 0.6:
            created = rng.uniform(0, DAY_S)
        else:  # the peak hours: around 10:00 and 15:00
            created = min(DAY_S, max(0.0, rng.gauss(rng.choice((10, 15)) * 3600, 3600)))
        kind = rng.randrange(len(KINDS))
        typical = KINDS[kind] * (2 if kind == 1 and created > DAY_S / 2 else 1)
        if rng.random() < 0.1:  # an outlier
            duration = rng.lognormvariate(6.2, 1.3)
        else:
            duration = rng.lognormvariate(math.log(typical), 0.35)
        duration = min(21600.0, max(10.0, duration))
        job = Job(created, duration, progress=rng.random() < 0.5, kind=kind)
        if job.progress:
            job.total = rng.choice((100, 1000, 10_000, 100_000))
            queued = rng.uniform(0, 0.15) * duration
            cuts = sorted(rng.uniform(queued, duration) for _ in range(rng.randint(1, 4)))
            knots = [0.0, queued, *cuts, duration]
            speeds = [0.0] + [
                0.0 if rng.random() < 0.15 else rng.uniform(0.3, 3.0) for _ in knots[2:]
            ]
            speeds[-1] = speeds[-1] or 1.0  # the last stretch works
            work = [0.0]
            for (a, b), speed in zip(itertools.pairwise(knots), speeds, strict=True):
                work.append(work[-1] + (b - a) * speed)
            job.knots, job.work = knots, [w / work[-1] for w in work]
        jobs.append(job)
    return jobs


@dataclass
class State:
    polls: int = 0
    samples: backoff.Samples = ()
    t0: float | None = None  # the old policy's first sample
    done0: int | None = None


Policy = Callable[[Job, State, float], float]  # the next interval


class Plain:
    """A policy that serves due polls first come, first served."""

    ranked = False

    def __init__(self, interval: Policy) -> None:
        self.interval = interval

    def __call__(self, job: Job, st: State, now: float) -> tuple[float, float]:
        return self.interval(job, st, now), 0.0

    def finished(self, job: Job) -> None:
        pass


def fixed(interval: float) -> Policy:
    return lambda job, st, now: interval


def exponential(job: Job, st: State, now: float) -> float:
    """Airflow-sensor style: x2 from 2 s up to 300 s."""
    return min(MAX_S, MIN_S * 2 ** (st.polls - 1))


def growth_15(job: Job, st: State, now: float) -> float:
    """The bridge before the lag target: x1.5 growth; with counts, the estimate from the
    first sample, 5 % late."""
    if job.progress:
        done = job.done_at(now)
        if st.t0 is None or st.done0 is None or done < st.done0:
            st.t0, st.done0 = now, done
        else:
            eta = backoff.estimate_remaining(
                t0=st.t0, done0=st.done0, t=now, done=done, total=job.total
            )
            if eta is not None:
                return min(MAX_S, max(MIN_S, eta * 1.05))
    n = st.polls - 1
    return MAX_S if n * math.log(1.5) >= math.log(MAX_S / MIN_S) else min(MAX_S, MIN_S * 1.5**n)


class Learned:
    """Durations per kind, as the store keeps them: two generations of GENERATION jobs,
    the older dropped when the newer fills (so a change of the typical duration is
    followed within GENERATION to 2 x GENERATION jobs)."""

    def __init__(self) -> None:
        self.generations: dict[int, tuple[Counter[int], Counter[int]]] = {}
        self.cache: dict[int, Durations] = {}

    def record(self, kind: int, duration: float) -> None:
        current, _ = self.generations.setdefault(kind, (Counter(), Counter()))
        current[bucket_of(duration)] += 1
        if sum(current.values()) >= GENERATION:
            self.generations[kind] = (Counter(), current)
        self.cache.pop(kind, None)

    def of(self, kind: int) -> Durations | None:
        if kind not in self.generations:
            return None
        if kind not in self.cache:
            current, previous = self.generations[kind]
            self.cache[kind] = Durations.from_counts(current + previous)
        return self.cache[kind]


class Bridge:
    """The daemon's policy: the same functions the poller calls, and the same priority
    under contention. learn=False: the lag target alone (no learned durations)."""

    def __init__(self, lag_target: float, learn: bool = True, ranked: bool = True) -> None:
        self.ranked = ranked
        self.lag_target = lag_target
        self.learned = Learned() if learn else None

    def __call__(self, job: Job, st: State, now: float) -> tuple[float, float]:
        eta, overdue = None, 0.0
        if job.progress:
            st.samples, eta, overdue = backoff.read_progress(
                st.samples, now=now, created_at=job.created, total=job.total, done=job.done_at(now)
            )
        age = now - job.created
        durations = self.learned.of(job.kind) if self.learned else None
        interval, _ = backoff.next_interval(
            age_s=age,
            lag_target=self.lag_target,
            min_s=MIN_S,
            max_s=MAX_S,
            eta_s=eta,
            overdue_s=overdue,
            learned_s=None if eta is not None else learned_interval(durations, age),
        )
        worth = priority.poll_worth(age_s=age, interval_s=interval, eta_s=eta, durations=durations)
        return interval, worth

    def finished(self, job: Job) -> None:
        if self.learned is not None:
            self.learned.record(job.kind, job.duration)


@dataclass
class Result:
    name: str
    requests: list[int]
    lags: list[float]
    kinds: list[bool]
    over_budget_share: float

    durations: list[float] = field(default_factory=list)

    def per(self, progress: bool | None) -> tuple[float, float, float, float, float]:
        """requests/job, p50/p95/p99 time-to-notice, and the p95 of time-to-notice over
        its allowance for jobs without progress (10 % of the duration + 2 s)."""
        pick = [i for i, k in enumerate(self.kinds) if progress is None or k == progress]
        req = statistics.mean(self.requests[i] for i in pick)
        lags = sorted(self.lags[i] for i in pick)
        rel = sorted(self.lags[i] / (0.1 * self.durations[i] + 2) for i in pick)
        return req, pct(lags, 0.5), pct(lags, 0.95), pct(lags, 0.99), pct(rel, 0.95)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def simulate(name: str, jobs: list[Job], policy: Plain | Bridge, rate: float) -> Result:
    """Polls through the source's limiter (the daemon's reserve: a poll goes at its
    slot). At each slot the policy's first due poll goes: by priority key for the
    bridge, by due time for the others. Returns requests and time-to-notice per job."""
    arrivals = [(job.created, i) for i, job in enumerate(jobs)]
    heapq.heapify(arrivals)  # (due time, job): not due yet
    ready: list[tuple[float, float, int]] = []  # (priority key, due time, job): due
    states = [State() for _ in jobs]
    worth = [priority.NEW_WATCH_WORTH] * len(jobs)
    requests = [0] * len(jobs)
    lags = [0.0] * len(jobs)
    due_per_minute: Counter[int] = Counter()
    tat: float | None = None
    now = 0.0
    while arrivals or ready:
        if not ready:
            now = max(now, arrivals[0][0])
        slot = now
        if rate > 0:  # the next slot of the limiter (server time in ms)
            r = reserve(tat, now * 1000, rate, 1, math.inf)
            slot = now + r.delay_ms / 1000
        while arrivals and arrivals[0][0] <= slot:
            due, i = heapq.heappop(arrivals)
            due_per_minute[int(due // 60)] += 1
            key = priority.priority_key(due, worth[i], MAX_S) if policy.ranked else due
            heapq.heappush(ready, (key, due, i))
        _, due, i = heapq.heappop(ready)
        now = slot = max(slot, due)
        if rate > 0:
            tat = reserve(tat, slot * 1000, rate, 1, math.inf).tat_ms
        job, st = jobs[i], states[i]
        requests[i] += 1
        st.polls += 1
        if now >= job.end:
            lags[i] = now - job.end
            policy.finished(job)
            continue
        interval, worth[i] = policy(job, st, now)
        heapq.heappush(arrivals, (now + interval, i))
    capacity = rate * 60 if rate > 0 else math.inf
    minutes = [m for m in due_per_minute if m * 60 < DAY_S]
    over = sum(1 for m in minutes if due_per_minute[m] > capacity) / max(1, len(minutes))
    return Result(
        name, requests, lags, [j.progress for j in jobs], over, [j.duration for j in jobs]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=6.0, help="requests/s; 0: no limit")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--png", help="write the requests-vs-p95 plot here")
    args = parser.parse_args()
    if args.png and importlib.util.find_spec("matplotlib") is None:  # before the long run
        parser.error("--png draws with matplotlib: .venv/bin/pip install '.[bench]'")
    jobs = workload(args.jobs, random.Random(args.seed))
    policies: list[tuple[str, Plain | Bridge]] = [
        ("fixed 2 s", Plain(fixed(2))),
        ("fixed 5 s", Plain(fixed(5))),
        ("fixed 30 s", Plain(fixed(30))),
        ("fixed 120 s", Plain(fixed(120))),
        ("exponential x2, 2-300 s", Plain(exponential)),
        ("x1.5 growth (before)", Plain(growth_15)),
        *[(f"lag target alone, {lt:g}", Bridge(lt, learn=False)) for lt in (0.05, 0.1, 0.2)],
        ("bridge 0.1, first due first", Bridge(0.1, ranked=False)),
        *[(f"bridge, lag_target {lt:g}", Bridge(lt)) for lt in (0.05, 0.1, 0.2, 0.4, 1.0)],
    ]
    started = time.monotonic()
    results = [simulate(name, jobs, policy, args.rate) for name, policy in policies]
    print(
        f"{args.jobs} jobs over a day, rate limit {args.rate:g}/s, seed {args.seed} "
        f"({time.monotonic() - started:.0f} s)"
    )
    print(
        "| policy | jobs | requests/job | p50 | p95 | p99 | p95 of lag / (10 % of D + 2 s) "
        "| minutes over budget |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for res in results:
        for label, which in (("progress", True), ("no progress", False)):
            req, p50, p95, p99, rel = res.per(which)
            print(
                f"| {res.name} | {label} | {req:.1f} | {p50:.1f} s | {p95:.1f} s | "
                f"{p99:.1f} s | {rel:.2f} | {res.over_budget_share:.0%} |"
            )
    if args.png:
        plot(results, args.png)


def plot(results: list[Result], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    panels = (
        ("jobs reporting progress", True, 2, "p95 time-to-notice (s)"),
        ("jobs reporting none", False, 2, "p95 time-to-notice (s)"),
        ("jobs reporting none, relative", False, 4, "p95 of time-to-notice / (10 % of D + 2 s)"),
    )
    for ax, (title, which, column, ylabel) in zip(axes, panels, strict=True):
        groups: dict[str, list[tuple[float, float, str]]] = {}
        for res in results:
            figures = res.per(which)
            family = res.name.split(",")[0] if "," in res.name else res.name.split(" ")[0]
            groups.setdefault(family, []).append((figures[0], max(figures[column], 0.01), res.name))
        for family, points in groups.items():
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=family)
            for x, y, name in points:
                ax.annotate(
                    name.split(", ")[-1],
                    (x, y),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("requests per job")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
