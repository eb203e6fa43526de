"""Sources made through the admin API at scale: N sources of 1 request/s each (--rate), defined
with POST /v1/sources while the bridge runs, J running jobs each (more demand than
budget: every job wants a poll a second), for --seconds.

Reports how long the definitions took and how long until the process polled them
all, how long a restart takes with them defined, the requests sent per second
against the summed budget (N), the process's CPU per poll and peak RSS (and its
growth per source), and Redis memory per defined source.

    .venv/bin/python bench/sources_api.py [--sources 1000] [--jobs 5] [--seconds 30]
        [--concurrency 256]

One bridge process (api and poller roles) on the embedded redis-server (persistence
off) and the simulator (a separate process), all on loopback; stops by itself.
Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import TOKEN, used_memory
from poll_throughput import polls_total, start_sim_process

from bridge import logs
from bridge.app import Bridge
from bridge.model import Role
from bridge.settings import load_settings
from bridge.store.embedded import EmbeddedRedis

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def longest_gaps(bridge: Bridge, since: float) -> list[float]:
    """Per running job, its longest time between two polls after `since` (its
    timeline keeps the last 20), less its interval of 1 s."""
    assert bridge.store is not None
    out, cursor = [], None
    while True:
        page, cursor = await bridge.store.list_watches(cursor=cursor, limit=500)
        for w in page:
            times = sorted(t for t, _, _ in w.timeline if t >= since)
            if len(times) >= 2:
                out.append(max(b - a for a, b in itertools.pairwise(times)) - 1.0)
        if cursor is None:
            return out


async def in_parallel(items: list[Any], clients: int, call: Any) -> None:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await call(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(clients)))


async def run(args: argparse.Namespace, tmp: Path, redis: EmbeddedRedis) -> dict[str, Any]:
    sim_proc, sim = await start_sim_process()
    n, jobs = args.sources, args.jobs
    try:
        async with aiohttp.ClientSession() as http:

            async def job(i: int) -> None:
                body = {"provider": "fullstory", "id": f"j{i:07d}", "duration": 10.0**6}
                async with http.post(f"{sim}/_sim/jobs", json=body) as resp:
                    assert resp.status == 201, await resp.text()

            await in_parallel(list(range(n * jobs)), 16, job)
        cfg = tmp / "bridge.toml"
        cfg.write_text(f"""
key_prefix = "srcapi"
[api]
listen = "127.0.0.1:0"
tokens = ["{TOKEN}"]
[poll]
min_interval = 1
max_interval = 1
concurrency = {args.concurrency}
""")
        bridge = Bridge(load_settings(cfg), redis_url=redis.url, roles={Role.API, Role.POLLER})
        await bridge.start()
        api = f"http://127.0.0.1:{bridge.api_port}"
        memory0, rss0 = await used_memory([redis.url]), rss_mib()
        names = [f"acme-{i:05d}" for i in range(n)]
        async with aiohttp.ClientSession(headers=AUTH) as http:
            burst = max(1, int(args.rate // 10))  # a tenth of the rate, as bench/scale.py

            async def define(name: str) -> None:
                body = {"name": name, "provider": "fullstory", "api_key": "sim-fullstory-key",
                        "base_url": sim, "rate_limit": args.rate, "burst": burst}  # fmt: skip
                async with http.post(f"{api}/v1/sources", json=body) as resp:
                    assert resp.status == 201, await resp.text()

            started = time.monotonic()
            await in_parallel(names, 8, define)
            defined_s = time.monotonic() - started
            assert bridge.live is not None
            known = asyncio.Event()
            bridge.live.on_change(
                lambda current, _: len(current.configs) >= n and known.set()  # type: ignore[func-returns-value]
            )
            if len(bridge.live.current.configs) < n:
                await asyncio.wait_for(known.wait(), 60)
            all_known_s = time.monotonic() - started
            memory_per_source = (await used_memory([redis.url]) - memory0) / n

            async def register(i: int) -> None:
                items = [{"source": names[k // jobs], "job_id": f"j{k:07d}"}
                         for k in range(i, min(n * jobs, i + 1000))]  # fmt: skip
                async with http.post(f"{api}/v1/watches/batch", json={"items": items}) as r:
                    assert r.status == 200, await r.text()

            await in_parallel(list(range(0, n * jobs, 1000)), 4, register)
        await asyncio.sleep(3)  # past the first round, when every job is due at once
        t0, cpu0, polls0 = time.monotonic(), time.process_time(), polls_total(bridge)
        await asyncio.sleep(args.seconds)
        wall, cpu, done = (
            time.monotonic() - t0,
            time.process_time() - cpu0,
            polls_total(bridge) - polls0,
        )
        gaps = await longest_gaps(bridge, time.time() - args.seconds)
        result = {
            "sources": n,
            "jobs_per_source": jobs,
            "concurrency": args.concurrency,
            "define_s": round(defined_s, 2),
            "defines_per_s": round(n / defined_s),
            "all_polled_after_s": round(all_known_s, 2),
            "redis_bytes_per_source": round(memory_per_source),
            "polls_per_s": round(done / wall, 1),
            "rate_each": args.rate,
            "share_of_budget": round(done / wall / (n * args.rate), 3),
            "cpu_us_per_poll": round(cpu / max(done, 1) * 1e6),
            # each job's longest time between two polls in the window, beyond its 1 s
            # interval; a fair share would be about jobs / rate each
            "fair_gap_s": round(jobs / args.rate, 1),
            "gap_beyond_interval_p50_s": round(quantile(gaps, 0.5), 1),
            "gap_beyond_interval_p99_s": round(quantile(gaps, 0.99), 1),
            "gap_beyond_interval_max_s": round(max(gaps, default=0.0), 1),
            "peak_rss_mib": round(rss_mib()),
            "rss_kib_per_source": round((rss_mib() - rss0) * 1024 / n, 1),
        }
        await bridge.stop(grace_s=2)
        # a restart: every definition read, opened and built again
        again = Bridge(load_settings(cfg), redis_url=redis.url, roles={Role.API, Role.POLLER})
        t0 = time.monotonic()
        await again.start()
        result["restart_s"] = round(time.monotonic() - t0, 2)
        assert again.live is not None
        assert len(again.live.current.configs) == n
        await again.stop(grace_s=2)
        return result
    finally:
        sim_proc.terminate()
        await sim_proc.wait()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=5, help="running jobs per source")
    parser.add_argument("--rate", type=float, default=1.0, help="rate_limit of each source")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=256, help="poll.concurrency")
    args = parser.parse_args()
    logs.configure("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        redis = EmbeddedRedis(Path(tmp) / "redis", persist=False)
        redis.start()
        try:
            result = await run(args, Path(tmp), redis)
        finally:
            redis.stop()
    print("| sources | defined in (s) | all polled after (s) | restart (s) | Redis B/source | "
          "polls/s | share of budget | CPU µs/poll | peak RSS MiB | RSS KiB/source |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    r = result
    cells = [r["sources"], r["define_s"], r["all_polled_after_s"], r["restart_s"],
             r["redis_bytes_per_source"],
             r["polls_per_s"], f"{r['share_of_budget']:.0%}", r["cpu_us_per_poll"],
             r["peak_rss_mib"], r["rss_kib_per_source"]]  # fmt: skip
    print("| " + " | ".join(str(c) for c in cells) + " |")
    print(json.dumps(result))
    return 0 if result["share_of_budget"] >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
