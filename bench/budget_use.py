"""How much of a source's rate budget the bridge uses when demand is above it, and
that it never goes over: the simulator counts every status request it receives.

    .venv/bin/python bench/budget_use.py [--rate 10] [--jobs 66] [--replicas 1] [--seconds 30]

Loopback only: an embedded redis-server, the simulator and the bridge replicas in this
process (replicas share the event loop; they coordinate through Redis as separate
processes would). Prints, over sliding 10 s windows after a 3 s warm-up, the lowest
achieved rate as a share of the limit, and the most requests seen in any window W
against rate·W + burst for W in 1 s and 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sim_rig import start_simulator

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


async def run(rate: float, jobs: int, replicas: int, seconds: float, tmp: Path) -> None:
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
max_interval = 1.0
[sources.fs]
provider = "fullstory"
api_key = "sim-fullstory-key"
base_url = "http://127.0.0.1:{port}"
rate_limit = {rate}
""")
    settings = load_settings(cfg)
    bridges = [Bridge(settings, redis_url=redis.url, roles={Role.POLLER}) for _ in range(replicas)]
    for bridge in bridges:
        await bridge.start()
    assert bridges[0].store is not None
    from bridge.model import WatchKey

    for i in range(jobs):
        sim.add_job(JobSpec(provider="fullstory", id=f"b{i}", duration=3600))
        await bridges[0].store.register(WatchKey("fs", "users", f"b{i}"), bridges[0].clock.now())
    for bridge in bridges:
        if bridge.poller:
            bridge.poller.wake()
    started = time.time()
    await asyncio.sleep(seconds)
    times = [r.t for r in sim.status_requests("fullstory") if r.t >= started]
    for bridge in bridges:
        await bridge.stop(1.0)
    await runner.cleanup()
    redis.stop()
    warm = started + 3
    lowest = least_in_window([t for t in times if t >= warm], warm, started + seconds, 10)
    print(
        f"rate_limit {rate:g}/s, {jobs} running jobs, {replicas} replica(s), {seconds:g} s: "
        f"{len(times)} requests; lowest 10 s window {lowest / (rate * 10):.1%} of the limit; "
        f"most in any 1 s: {most_in_window(times, 1.0)} (limit {rate * 1 + 1:g}), "
        f"in any 10 s: {most_in_window(times, 10.0)} (limit {rate * 10 + 1:g})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--jobs", type=int, default=66)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.rate, args.jobs, args.replicas, args.seconds, Path(tmp)))


if __name__ == "__main__":
    main()
