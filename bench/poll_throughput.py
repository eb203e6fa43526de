"""Polls per second of one bridge process against the local simulator, next to a bare
aiohttp GET loop against the same simulator in the same run.

    .venv/bin/python bench/poll_throughput.py [--seconds 10] [--rounds 3] [--jobs 1000]

Rounds alternate (bare, bridge, bare, bridge, …) so that both see the same machine
state; the medians are reported.

Everything runs on loopback: a real redis-server (embedded), the simulator as a
separate process, and the measured client in this process. Rate limits are off.
Prints one JSON line and a Markdown table row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bridge.app import Bridge
from bridge.model import Role, WatchKey
from bridge.settings import load_settings
from bridge.store.embedded import EmbeddedRedis


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(url: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url):
                    return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def start_sim_process() -> tuple[asyncio.subprocess.Process, str]:
    """The simulator as a separate process on a free loopback port, answering; its URL."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bridge", "sim", "--listen", f"127.0.0.1:{port}"),
        *("--log-limit", "1000"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sim = f"http://127.0.0.1:{port}"
    try:
        await wait_for(f"{sim}/_sim/jobs")
    except BaseException:
        proc.terminate()
        await proc.wait()
        raise
    return proc, sim


def polls_total(bridge: Bridge) -> float:
    """Polls made so far, every source's (the bridge_polls_total metric)."""
    return sum(
        s.value
        for m in bridge.metrics.polls.collect()
        for s in m.samples
        if s.name == "bridge_polls_total"
    )


async def create_jobs(sim: str, n: int) -> list[str]:
    ids = [f"bench{i}" for i in range(n)]
    async with aiohttp.ClientSession() as http:
        for job_id in ids:
            body = {"provider": "fullstory", "id": job_id, "duration": 10**6}
            async with http.post(f"{sim}/_sim/jobs", json=body) as resp:
                assert resp.status == 201
    return ids


async def bare_loop(sim: str, ids: list[str], seconds: float, concurrency: int) -> float:
    """The baseline: GET + read + JSON decode, as fast as `concurrency` workers go."""
    done = 0
    headers = {"Authorization": "Basic sim-fullstory-key", "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        stop_at = time.monotonic() + seconds

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.monotonic() < stop_at:
                async with http.get(
                    f"{sim}/v2/users/batch/{ids[i % len(ids)]}", headers=headers
                ) as r:
                    json.loads(await r.read())
                done += 1
                i += concurrency

        started = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return done / (time.monotonic() - started)


async def bridge_run(
    sim: str, redis_url: str, ids: list[str], seconds: float, concurrency: int, tmp: Path
) -> tuple[float, float]:
    """Polls per second and this process's CPU seconds per poll.

    The poller alone (no API), every watch always due, limiter off.
    """
    cfg = tmp / "bench.toml"
    cfg.write_text(f"""
key_prefix = "bench"
[api]
listen = "127.0.0.1:0"
[poll]
min_interval = 0.01
max_interval = 0.01
concurrency = {concurrency}
tick = 0.05
[sources.fs]
provider = "fullstory"
api_key = "sim-fullstory-key"
base_url = "{sim}"
rate_limit = 0
""")
    settings = load_settings(cfg)
    bridge = Bridge(settings, redis_url=redis_url, roles={Role.POLLER})
    await bridge.start()
    assert bridge.store is not None
    now = time.time()
    for job_id in ids:
        await bridge.store.register(WatchKey("fs", "users", job_id), now)
    assert bridge.poller is not None
    bridge.poller.wake()

    await asyncio.sleep(1)  # warm-up: connection pools, first claims
    start_polls, started, cpu0 = polls_total(bridge), time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    done = polls_total(bridge) - start_polls
    rate, cpu = done / (time.monotonic() - started), (time.process_time() - cpu0) / done
    await bridge.stop(grace_s=5)
    return rate, cpu


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        redis = EmbeddedRedis(tmp / "redis", persist=False)
        redis.start()
        sim_proc, sim = await start_sim_process()
        try:
            ids = await create_jobs(sim, args.jobs)
            await bare_loop(sim, ids, 2, args.concurrency)  # warm-up
            bares: list[float] = []
            bridges: list[float] = []
            cpu_bare: list[float] = []
            cpu_bridge: list[float] = []
            for _ in range(args.rounds):
                cpu0 = time.process_time()
                bares.append(await bare_loop(sim, ids, args.seconds, args.concurrency))
                cpu_bare.append((time.process_time() - cpu0) / (bares[-1] * args.seconds))
                rate, cpu = await bridge_run(
                    sim, redis.url, ids, args.seconds, args.concurrency, tmp
                )
                bridges.append(rate)
                cpu_bridge.append(cpu)
        finally:
            sim_proc.terminate()
            await sim_proc.wait()
            redis.stop()
    bare, bridged = statistics.median(bares), statistics.median(bridges)
    result = {
        "bare_get_per_s": round(bare),
        "bridge_polls_per_s": round(bridged),
        "ratio": round(bridged / bare, 3),
        "rounds": {"bare": [round(b) for b in bares], "bridge": [round(b) for b in bridges]},
        "client_cpu_us_per_bare_get": round(statistics.median(cpu_bare) * 1e6),
        "client_cpu_us_per_bridge_poll": round(statistics.median(cpu_bridge) * 1e6),
        "seconds": args.seconds,
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "python": platform.python_version(),
        "redis": str(redis.binary),
    }
    print(json.dumps(result))
    print(f"| {result['bare_get_per_s']} | {result['bridge_polls_per_s']} | {result['ratio']} |")


if __name__ == "__main__":
    asyncio.run(main())
