"""One upstream hangs: are the other sources still polled on time?

FullStory answers every request only after --hang seconds (longer than the bridge's
request_timeout), with --fs-jobs running jobs; Talkdesk runs --td-jobs jobs that end
2-4 s after registration. Prints Talkdesk's time-to-notice (from the job's end to
the poll that saw it) with a few workers kept free for each source (the daemon), and
with none kept, so that one source may take every worker (how the poller behaved
before).

    .venv/bin/python bench/hanging_upstream.py [--fs-jobs 100] [--td-jobs 10]

Loopback only: an embedded redis-server, the simulator and one bridge (poller role)
in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim_rig import sim_sources_toml, start_simulator

from bridge import logs
from bridge.app import Bridge
from bridge.model import Role, WatchKey
from bridge.poll import poller
from bridge.settings import load_settings
from bridge.sim.upstream import FaultSpec, JobSpec
from bridge.store.embedded import EmbeddedRedis


async def run(args: argparse.Namespace, kept: bool, tmp: Path) -> list[float]:
    share = 0
    if not kept:  # as before: no worker kept for anyone
        poller.reserve_per_source = lambda concurrency, sources: 0
    redis = EmbeddedRedis(tmp / f"redis-{kept}", persist=False)
    redis.start()
    sim, runner, port = await start_simulator()
    cfg = tmp / f"bench-{share}.toml"
    cfg.write_text(f"""
key_prefix = "hang"
[api]
listen = "127.0.0.1:0"
[poll]
min_interval = 2.0
concurrency = {args.concurrency}
source_concurrency = {share}
request_timeout = 30.0
lease = 60.0
{sim_sources_toml(port)}""")
    bridge = Bridge(load_settings(cfg), redis_url=redis.url, roles={Role.POLLER})
    await bridge.start()
    assert bridge.store is not None
    assert bridge.poller is not None
    try:
        sim.add_fault(FaultSpec(kind="slow", provider="fullstory", delay=args.hang, count=10**6))
        for i in range(args.fs_jobs):
            sim.add_job(JobSpec(provider="fullstory", id=f"fs{i}", duration=3600))
            await bridge.store.register(WatchKey("fs", "users", f"fs{i}"), bridge.clock.now())
        bridge.poller.wake()
        await asyncio.sleep(1.0)  # FullStory's polls are out and hanging
        ends: dict[str, float] = {}
        for i in range(args.td_jobs):
            duration = 2 + 2 * i / max(1, args.td_jobs - 1)
            job = sim.add_job(JobSpec(provider="talkdesk", id=f"td{i}", duration=duration))
            watch, _ = await bridge.store.register(
                WatchKey("td", "users", f"td{i}"), bridge.clock.now()
            )
            ends[watch.id] = job.created + duration
        bridge.poller.wake()
        deadline = time.monotonic() + args.hang + 60
        lags: list[float] = []
        while time.monotonic() < deadline:
            views = [await bridge.store.get_watch(w) for w in ends]
            if all(v is not None and v.terminal_at for v in views):
                lags = [v.terminal_at - ends[v.id] for v in views if v and v.terminal_at]
                break
            await asyncio.sleep(0.2)
        return lags
    finally:
        await bridge.stop(1.0)
        await runner.cleanup()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fs-jobs", type=int, default=100)
    parser.add_argument("--td-jobs", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--hang", type=float, default=120.0, help="seconds FullStory takes")
    args = parser.parse_args()
    logs.configure("ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        for kept, name in ((True, "workers kept per source"), (False, "none kept (before)")):
            lags = asyncio.run(run(args, kept, Path(tmp)))
            if len(lags) < args.td_jobs:
                print(f"{name:22}: {len(lags)} of {args.td_jobs} Talkdesk jobs noticed")
                continue
            print(
                f"{name:22}: Talkdesk time-to-notice median {statistics.median(lags):.2f} s, "
                f"max {max(lags):.2f} s ({args.td_jobs} jobs; FullStory hangs {args.hang:g} s "
                f"with {args.fs_jobs} jobs, poll.concurrency {args.concurrency})"
            )


if __name__ == "__main__":
    main()
