"""Time-to-notice and requests per job in real time against the simulator, time scaled
by 0.1 (min_interval 0.2 s, max_interval 30 s): Talkdesk jobs that report progress after
a queued start, and FullStory jobs that report none.

    .venv/bin/python bench/notice_realtime.py [--jobs 40] [--seed 1]

Job durations are those of bench/efficiency.py scaled by 0.1 (log-normal, median 48 s),
cut to 1-120 s so that a run ends within a few minutes. Time-to-notice is the watch's
terminal_at minus the job's end in the simulator. Requests are compared with a fixed
poller at min_interval (the "fixed 2 s" poller of the efficiency bench, scaled).
Loopback only: an embedded redis-server, the simulator and one bridge process in this
process; no rate limit.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

from sim_rig import sim_sources_toml, start_simulator

from bridge import logs
from bridge.app import Bridge
from bridge.model import Role, WatchKey
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]


async def run(jobs: int, seed: int, tmp: Path, verbose: bool = False) -> None:
    rng = random.Random(seed)
    redis = EmbeddedRedis(tmp / "redis", persist=False)
    redis.start()
    sim, runner, port = await start_simulator()
    cfg = tmp / "bench.toml"
    cfg.write_text(f"""
key_prefix = "notice"
[api]
listen = "127.0.0.1:0"
[poll]
min_interval = 0.2
max_interval = 30.0
tick = 0.05
{sim_sources_toml(port)}""")
    bridge = Bridge(load_settings(cfg), redis_url=redis.url, roles={Role.POLLER})
    await bridge.start()
    assert bridge.store is not None
    assert bridge.poller is not None
    watches: dict[str, tuple[str, str, float]] = {}  # watch id → (provider, job, duration)
    for provider, source in (("talkdesk", "td"), ("fullstory", "fs")):
        for i in range(jobs):
            duration = min(120.0, max(1.0, rng.lognormvariate(math.log(49.3), 1.3)))
            job = f"{source}{i}"
            sim.add_job(JobSpec(provider=provider, id=job, duration=duration))
            watch, _ = await bridge.store.register(
                WatchKey(source, "users", job), bridge.clock.now()
            )
            watches[watch.id] = (provider, job, duration)
    bridge.poller.wake()
    started = time.monotonic()
    while time.monotonic() - started < 300:
        views = [await bridge.store.get_watch(w) for w in watches]
        if all(v is not None and v.terminal_at for v in views):
            break
        await asyncio.sleep(0.5)
    created = {j.spec.id: j.created for j in sim.state.jobs.values()}
    for provider in ("talkdesk", "fullstory"):
        lags, rel, requests, fixed, durations = [], [], [], [], []
        for watch_id, (p, job, duration) in watches.items():
            if p != provider:
                continue
            w = await bridge.store.get_watch(watch_id)
            assert w is not None
            assert w.terminal_at is not None
            lag = w.terminal_at - (created[job] + duration)
            lags.append(lag)
            rel.append(lag / (0.1 * duration + 0.2))
            fixed.append(math.floor(duration / 0.2) + 1)
            durations.append(duration)
            requests.append(sum(1 for r in sim.status_requests(provider) if r.path.endswith(job)))
            if verbose and lag > 0.1 * duration + 0.2:
                times = [
                    round(r.t - created[job], 2)
                    for r in sim.status_requests(provider)
                    if r.path.endswith(job)
                ]
                print(f"  {job} duration {duration:.1f} s, lag {lag:.1f} s, polls at {times}")
        print(
            f"{provider:9} {len(lags)} jobs: requests/job mean {statistics.mean(requests):.1f} "
            f"(fixed 0.2 s poller: {statistics.mean(fixed):.1f}, "
            f"{statistics.mean(fixed) / statistics.mean(requests):.1f}x as many); "
            f"time-to-notice p50 {pct(lags, 0.5):.2f} s, p95 {pct(lags, 0.95):.2f} s, "
            f"max {max(lags):.2f} s; worst lag / (10 % of duration + 0.2 s) {max(rel):.2f}"
        )
        bands = []
        for lo, hi in ((0, 20), (20, 40), (40, 80), (80, 121)):
            pick = [i for i, d in enumerate(durations) if lo <= d < hi]
            if pick:
                ratio = sum(fixed[i] for i in pick) / sum(requests[i] for i in pick)
                bands.append(f"{lo}-{min(hi, 120)} s: {len(pick)} jobs, {ratio:.1f}x")
        print("  fewer requests than the fixed poller by duration: " + "; ".join(bands))
    await bridge.stop(1.0)
    await runner.cleanup()
    redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="show the polls of late jobs")
    args = parser.parse_args()
    logs.configure("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.jobs, args.seed, Path(tmp), args.verbose))


if __name__ == "__main__":
    main()
