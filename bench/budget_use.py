"""How much of a source's rate budget the bridge uses when demand is above it, and
that it never goes over: the simulator counts every status request it receives.

    .venv/bin/python bench/budget_use.py [--rate 10] [--jobs 66] [--replicas 1] [--seconds 30]
        [--max-interval 1] [--ends LO,HI]

Loopback only: an embedded redis-server, the simulator and the bridge replicas in this
process (replicas share the event loop; they coordinate through Redis as separate
processes would). Prints, over sliding 10 s windows after a 3 s warm-up, the lowest
achieved rate as a share of the limit, and the most requests seen in any window W
against rate·W + burst for W in 1 s and 10 s; with budget to spare, the largest gap
between two polls of one running job against max_interval + one tick. With --ends, the
jobs end at times drawn uniformly from LO to HI seconds (seed 1) and the worst
time-to-notice (terminal_at minus the job's end) is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import tempfile
import time
from pathlib import Path

from sim_rig import start_simulator

from bridge import logs
from bridge.app import Bridge
from bridge.model import Role
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis


def most_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def least_in_window(times: list[float], start: float, end: float, window_s: float) -> int:
    times = sorted(times)
    worst = len(times)
    t = start
    while t + window_s <= end:
        worst = min(worst, sum(1 for x in times if t <= x < t + window_s))
        t += 0.5
    return worst


def largest_gap(times: list[float]) -> float:
    times = sorted(times)
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


async def run(
    rate: float,
    jobs: int,
    replicas: int,
    seconds: float,
    tmp: Path,
    max_interval: float = 1.0,
    ends: tuple[float, float] | None = None,
    burst: int = 1,
) -> None:
    redis = EmbeddedRedis(tmp / "redis", persist=False)
    redis.start()
    sim, runner, port = await start_simulator()
    cfg = tmp / "bench.toml"
    cfg.write_text(f"""
key_prefix = "budget"
[api]
listen = "127.0.0.1:0"
[poll]
min_interval = 0.2
max_interval = {max_interval}
[sources.fs]
provider = "fullstory"
api_key = "sim-fullstory-key"
base_url = "http://127.0.0.1:{port}"
rate_limit = {rate}
burst = {burst}
""")
    settings = load_settings(cfg)
    bridges = [Bridge(settings, redis_url=redis.url, roles={Role.POLLER}) for _ in range(replicas)]
    for bridge in bridges:
        await bridge.start()
    assert bridges[0].store is not None
    from bridge.model import WatchKey

    rng = random.Random(1)
    durations = {f"b{i}": rng.uniform(*ends) if ends else 3600.0 for i in range(jobs)}
    watch_ids = {}
    for job, duration in durations.items():
        sim.add_job(JobSpec(provider="fullstory", id=job, duration=duration))
        watch, _ = await bridges[0].store.register(
            WatchKey("fs", "users", job), bridges[0].clock.now()
        )
        watch_ids[job] = watch.id
    for bridge in bridges:
        if bridge.poller:
            bridge.poller.wake()
    started = time.time()
    await asyncio.sleep(seconds)
    requests = sim.status_requests("fullstory")
    times = [r.t for r in requests if r.t >= started]
    created = {j.spec.id: j.created for j in sim.state.jobs.values()}
    gap = max(
        largest_gap(
            [r.t for r in requests if r.path.endswith(f"/{job}") and r.t < created[job] + d]
        )
        for job, d in durations.items()
    )
    lags = []
    for job, d in durations.items():
        w = await bridges[0].store.get_watch(watch_ids[job])
        if ends and w is not None and w.terminal_at is not None:
            lags.append(w.terminal_at - (created[job] + d))
    tick = settings.poll.tick
    for bridge in bridges:
        await bridge.stop(1.0)
    await runner.cleanup()
    redis.stop()
    warm = started + 3
    lowest = least_in_window([t for t in times if t >= warm], warm, started + seconds, 10)
    print(
        f"rate_limit {rate:g}/s, {jobs} running jobs, {replicas} replica(s), {seconds:g} s: "
        f"{len(times)} requests; lowest 10 s window {lowest / (rate * 10):.1%} of the limit; "
        f"most in any 1 s: {most_in_window(times, 1.0)} (limit {rate * 1 + burst:g}), "
        f"in any 10 s: {most_in_window(times, 10.0)} (limit {rate * 10 + burst:g}); "
        f"largest gap between polls of a running job {gap:.2f} s "
        f"(max_interval + tick = {max_interval + tick:g} s)"
    )
    if ends:
        print(
            f"{len(lags)} of {jobs} jobs ended and noticed: worst time-to-notice "
            f"{max(lags, default=float('nan')):.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--jobs", type=int, default=66)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-interval", type=float, default=1.0)
    parser.add_argument("--ends", help="LO,HI: jobs end after LO to HI seconds")
    parser.add_argument("--burst", type=int, default=1, help="the source's burst")
    args = parser.parse_args()
    logs.configure("WARNING")
    ends = tuple(float(x) for x in args.ends.split(",")) if args.ends else None
    if ends is not None and len(ends) != 2:
        parser.error("--ends takes LO,HI")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(
            run(
                args.rate,
                args.jobs,
                args.replicas,
                args.seconds,
                Path(tmp),
                args.max_interval,
                ends,  # type: ignore[arg-type]
                args.burst,
            )
        )


if __name__ == "__main__":
    main()
