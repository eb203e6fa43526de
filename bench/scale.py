"""Scale: what a watch costs as their number grows, and one process polling many.

Part 1, at each step (10k, 100k, 1M watches by default): registers watches through
POST /v1/watches/batch (1,000 a call, 4 clients) up to the step's total, and reports
Redis memory per watch (INFO used_memory), the registration rate, and the latency of
a claim (16 watches) and of a record (a poll's result written back) at that size,
p50 and p99, with this process's CPU per claimed watch.

Part 2 (--active N): one bridge process (poller role) polls N running jobs on the
simulator (a separate process) with the rate limit binding (--rate, far below what N
watches would ask for; with --sources S, S sources share the jobs and the rate
evenly), for --seconds; jobs end at random times within
the run. Reports polls per second against the limit, the process's CPU and peak RSS,
and time-to-notice (the bridge's own histogram) of the jobs that ended.

    .venv/bin/python bench/scale.py [--steps 10000,100000,1000000]
        [--active 100000] [--rate 2000] [--seconds 60] [--concurrency 64] [--sources 1]

Everything runs on loopback against the embedded redis-server (persistence off) and
stops by itself. Prints a Markdown table per part and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import TOKEN, register_batch, used_memory
from poll_throughput import polls_total, start_sim_process
from sim_rig import sim_sources_toml

from bridge import logs
from bridge.app import Bridge
from bridge.model import Role, WatchKey
from bridge.settings import load_settings
from bridge.store.connection import connect
from bridge.store.embedded import EmbeddedRedis
from bridge.store.redis import RedisStore

PROBE_CLAIMS = 300  # claims of 16 timed at each step


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def probe(redis_url: str, prefix: str) -> dict[str, float]:
    """Claim and record latency with this many watches stored: PROBE_CLAIMS claims of
    16 due watches, each watch then recorded (rescheduled far ahead, so the next claim
    takes others), as the poller does."""
    store = RedisStore(connect(redis_url), prefix)
    claims: list[float] = []
    records: list[float] = []
    taken = 0
    far = time.time() + 10**7
    cpu0 = time.process_time()
    try:
        for _ in range(PROBE_CLAIMS):
            started = time.perf_counter()
            got = await store.claim(time.time(), 30, 16, {"fs": (0.0, 1)})
            claims.append(time.perf_counter() - started)
            taken += len(got)

            async def record(c: Any) -> None:
                began = time.perf_counter()
                await store.reschedule(c, c.watch, far)
                records.append(time.perf_counter() - began)

            await asyncio.gather(*(record(c) for c in got))
    finally:
        cpu = time.process_time() - cpu0
        await store.close()
    return {
        "claim_p50_ms": quantile(claims, 0.5) * 1e3,
        "claim_p99_ms": quantile(claims, 0.99) * 1e3,
        "record_p50_ms": quantile(records, 0.5) * 1e3 if records else 0.0,
        "record_p99_ms": quantile(records, 0.99) * 1e3 if records else 0.0,
        "cpu_us_per_watch": cpu / max(taken, 1) * 1e6,
        "claimed": taken,
    }


async def part_one(steps: list[int], tmp: Path, redis: EmbeddedRedis) -> list[dict[str, Any]]:
    cfg = tmp / "api.toml"
    cfg.write_text(
        f'key_prefix = "scale"\n[api]\nlisten = "127.0.0.1:0"\ntokens = ["{TOKEN}"]\n'
        + sim_sources_toml(9)  # never called: the API role polls nothing
    )
    bridge = Bridge(load_settings(cfg), redis_url=redis.url, roles={Role.API})
    await bridge.start()
    api = f"http://127.0.0.1:{bridge.api_port}"
    rows = []
    registered = 0
    try:
        base = await used_memory(redis.url)
        for total in steps:
            n = total - registered
            took = await register_batch(api, n, 4, f"s{total}")
            grown = await used_memory(redis.url)
            registered = total
            row = {
                "watches": total,
                "bytes_per_watch": round((grown - base) / total),
                "registered_per_s": round(n / took),
                **{k: round(v, 2) for k, v in (await probe(redis.url, "scale")).items()},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        await bridge.stop(grace_s=1)
    return rows


async def create_jobs(sim: str, n: int, seconds: float) -> dict[str, float]:
    """n running FullStory jobs; a tenth end at random times within the run (the rest
    outlast it). Returns each job's id and duration."""
    durations = {
        f"a{i:07d}": random.uniform(5, seconds - 5) if i % 10 == 0 else 10.0**6 for i in range(n)
    }
    queue: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    for item in durations.items():
        queue.put_nowait(item)
    async with aiohttp.ClientSession() as http:

        async def worker() -> None:
            while not queue.empty():
                job_id, duration = queue.get_nowait()
                body = {"provider": "fullstory", "id": job_id, "duration": duration}
                async with http.post(f"{sim}/_sim/jobs", json=body) as resp:
                    assert resp.status == 201, await resp.text()

        await asyncio.gather(*(worker() for _ in range(16)))
    return durations


def histogram_quantile(bridge: Bridge, q: float) -> float | None:
    """q-quantile of time-to-notice from the histogram's buckets (their upper bound),
    every source's together."""
    counts: dict[float, float] = {}
    for metric in bridge.metrics.time_to_notice.collect():
        for s in metric.samples:
            if s.name.endswith("_bucket"):
                le = float(s.labels["le"])
                counts[le] = counts.get(le, 0.0) + s.value
    total = counts.get(float("inf"), 0.0)
    if not total:
        return None
    for bound in sorted(counts):
        if counts[bound] >= q * total:
            return bound
    return None


def sources_toml(sim: str, sources: int, rate: float) -> str:
    """`sources` FullStory sources on the simulator, each limited to rate/sources."""
    each = rate / sources
    burst = max(1, int(each // 10))
    return "".join(
        f'[sources.s{i}]\nprovider = "fullstory"\napi_key = "sim-fullstory-key"\n'
        f'base_url = "{sim}"\nrate_limit = {each}\nburst = {burst}\n'
        for i in range(sources)
    )


async def part_two(
    active: int,
    rate: float,
    seconds: float,
    tmp: Path,
    redis: EmbeddedRedis,
    concurrency: int,
    sources: int = 1,
) -> dict[str, Any]:
    sim_proc, sim = await start_sim_process()
    try:
        durations = await create_jobs(sim, active, seconds)
        cfg = tmp / "poller.toml"
        cfg.write_text(f"""
key_prefix = "active"
[api]
listen = "127.0.0.1:0"
[poll]
min_interval = 2
max_interval = 60
concurrency = {concurrency}
{sources_toml(sim, sources, rate)}""")
        bridge = Bridge(load_settings(cfg), redis_url=redis.url, roles={Role.POLLER})
        await bridge.start()
        assert bridge.store is not None
        keys = [WatchKey(f"s{i % sources}", "users", job_id) for i, job_id in enumerate(durations)]
        for start in range(0, len(keys), 1000):
            await bridge.store.register_many(keys[start : start + 1000], time.time())
        assert bridge.poller is not None
        bridge.poller.wake()

        started, cpu0, polls0 = time.monotonic(), time.process_time(), polls_total(bridge)
        await asyncio.sleep(seconds)
        wall, cpu, done = (
            time.monotonic() - started,
            time.process_time() - cpu0,
            polls_total(bridge) - polls0,
        )
        noticed = sum(
            s.value
            for m in bridge.metrics.time_to_notice.collect()
            for s in m.samples
            if s.name.endswith("_count")
        )
        result = {
            "active_watches": active,
            "concurrency": concurrency,
            "sources": sources,
            "rate_limit": rate,
            "polls_per_s": round(done / wall),
            "share_of_limit": round(done / wall / rate, 3),
            "cpu_share_of_one_core": round(cpu / wall, 3),
            "cpu_us_per_poll": round(cpu / max(done, 1) * 1e6),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "jobs_ended": sum(1 for d in durations.values() if d < seconds),
            "jobs_noticed": int(noticed),
            "time_to_notice_p50_le_s": histogram_quantile(bridge, 0.5),
            "time_to_notice_p99_le_s": histogram_quantile(bridge, 0.99),
        }
        await bridge.stop(grace_s=2)
        return result
    finally:
        sim_proc.terminate()
        await sim_proc.wait()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="10000,100000,1000000")
    parser.add_argument("--active", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=64, help="poll.concurrency")
    parser.add_argument(
        "--sources", type=int, default=1, help="sources sharing --rate and --active evenly"
    )
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",") if s]
    logs.configure("warning")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmpdir:
        tmp = Path(tmpdir)
        redis = EmbeddedRedis(tmp / "redis", persist=False)
        redis.start()
        try:
            rows = await part_one(steps, tmp, redis) if steps else []
            active = await part_two(
                args.active, args.rate, args.seconds, tmp, redis, args.concurrency, args.sources
            )
        finally:
            redis.stop()
    print("| watches | bytes/watch | registered/s | claim p50 / p99 ms | record p50 / p99 ms |"
          " CPU µs per claimed watch |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['watches']:,} | {r['bytes_per_watch']:,} | {r['registered_per_s']:,} "
            f"| {r['claim_p50_ms']} / {r['claim_p99_ms']} | {r['record_p50_ms']} / "
            f"{r['record_p99_ms']} | {r['cpu_us_per_watch']} |"
        )
    print(json.dumps(active))
    print(json.dumps({"steps": rows, "active": active, "python": sys.version.split()[0],
                      "median_bytes_per_watch": statistics.median(
                          [r["bytes_per_watch"] for r in rows]) if rows else None}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
