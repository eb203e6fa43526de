"""Redis that hangs rather than fails: how soon the bridge says so, and how soon it is
back at work.

silent: two replicas, one reaching Redis through a route that goes silent for --cut
seconds (no reset, no refusal). Prints how long its /readyz and a registration took
to answer once the route went silent, how long after the heal it was ready again, and
whether every job still has exactly one event.

full: Redis at maxmemory (noeviction) for --full seconds while polls are in flight.
Prints the registration's answer, and how long after Redis took writes again every
job had its event.

    .venv/bin/python bench/redis_faults.py [--jobs 40] [--cut 15] [--full 5]

Loopback only: an embedded redis-server, a black-hole proxy, the simulator and the
bridges in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the black-hole proxy

from sim_rig import start_simulator

from bridge import logs
from bridge.app import Bridge
from bridge.settings import load_settings
from bridge.sim.upstream import FaultSpec, JobSpec
from bridge.store.connection import connect
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.blackhole import BlackholeProxy

TOKEN = "bench-token-0123456789"  # noqa: S105 - a loopback benchmark's token


def config(tmp: Path, name: str, sim_port: int, lease: float) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(f"""
key_prefix = "faults"
[api]
listen = "127.0.0.1:0"
tokens = ["{TOKEN}"]
[poll]
min_interval = 0.2
max_interval = 1.0
tick = 0.05
request_timeout = 2
lease = {lease}
[sources.fs]
provider = "fullstory"
api_key = "sim-fullstory-key"
base_url = "http://127.0.0.1:{sim_port}"
rate_limit = 0
""")
    return path


async def timed(call: Any) -> tuple[float, int]:
    started = time.monotonic()
    async with call as resp:
        return time.monotonic() - started, resp.status


async def events_per_job(bridge: Bridge, watch_ids: list[str]) -> list[int]:
    assert bridge.store is not None
    return [len((await bridge.store.events.list_events(watch_id=w))[0]) for w in watch_ids]


async def every_job_told(bridge: Bridge, watch_ids: list[str]) -> bool:
    return all(n >= 1 for n in await events_per_job(bridge, watch_ids))


async def until(check: Any, within_s: float) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within_s:
            return float("inf")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def silent(args: argparse.Namespace, tmp: Path) -> None:
    redis = EmbeddedRedis(tmp / "redis-silent", persist=False)
    redis.start()
    proxy = BlackholeProxy(redis.socket)
    await proxy.start()
    sim, runner, port = await start_simulator()
    settings = load_settings(config(tmp, "silent", port, lease=5))
    cut_off, direct = Bridge(settings, redis_url=proxy.url), Bridge(settings, redis_url=redis.url)
    await cut_off.start()
    await direct.start()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    api = f"http://127.0.0.1:{cut_off.api_port}"
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            watch_ids = []
            for i in range(args.jobs):
                sim.add_job(JobSpec(provider="fullstory", id=f"j{i}", duration=1 + i % 8))
                resp = await http.post(
                    f"{api}/v1/watches", json={"source": "fs", "job_id": f"j{i}"}
                )
                watch_ids.append((await resp.json())["id"])
            await asyncio.sleep(0.5)  # polls under way when the route goes silent
            proxy.cut()
            ready, register = await asyncio.gather(
                timed(http.get(f"{api}/readyz")),
                timed(http.post(f"{api}/v1/watches", json={"source": "fs", "job_id": "x"})),
            )
            print(f"silent: /readyz answered {ready[1]} in {ready[0]:.2f} s; "
                  f"POST /v1/watches answered {register[1]} in {register[0]:.2f} s")  # fmt: skip
            await asyncio.sleep(args.cut)
            proxy.heal()

            async def ready_again() -> bool:
                async with http.get(f"{api}/readyz") as resp:
                    return resp.status == 200

            back = await until(ready_again, 60)

            await until(lambda: every_job_told(direct, watch_ids), 60)
            counts = await events_per_job(direct, watch_ids)
            print(f"silent: cut {args.cut:g} s; ready again {back:.2f} s after the heal; "
                  f"{sum(n == 1 for n in counts)} of {len(counts)} jobs with exactly one "
                  f"event (most for one job: {max(counts)})")  # fmt: skip
    finally:
        await cut_off.stop(1)
        await direct.stop(1)
        await proxy.close()
        await runner.cleanup()
        redis.stop()


async def full(args: argparse.Namespace, tmp: Path) -> None:
    redis = EmbeddedRedis(tmp / "redis-full", persist=False)
    redis.start()
    sim, runner, port = await start_simulator()
    bridge = Bridge(load_settings(config(tmp, "full", port, lease=60)), redis_url=redis.url)
    await bridge.start()
    admin = connect(redis.url)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    api = f"http://127.0.0.1:{bridge.api_port}"
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            jobs = args.jobs // 2
            sim.add_fault(FaultSpec(kind="slow", provider="fullstory", delay=1.0, count=jobs))
            watch_ids = []
            for i in range(jobs):
                sim.add_job(JobSpec(provider="fullstory", id=f"f{i}", duration=0))
                resp = await http.post(
                    f"{api}/v1/watches", json={"source": "fs", "job_id": f"f{i}"}
                )
                watch_ids.append((await resp.json())["id"])

            async def in_flight() -> bool:  # every first poll is at the upstream
                return sim.state.faults[0].left == 0

            await until(in_flight, 10)
            await admin.config_set("maxmemory-policy", "noeviction")
            await admin.config_set("maxmemory", "1")
            took, status = await timed(
                http.post(f"{api}/v1/watches", json={"source": "fs", "job_id": "x"})
            )
            print(f"full: POST /v1/watches answered {status} in {took:.2f} s")
            await asyncio.sleep(args.full)
            await admin.config_set("maxmemory", "0")

            done = await until(lambda: every_job_told(bridge, watch_ids), 120)
            counts = await events_per_job(bridge, watch_ids)
            print(f"full: Redis full {args.full:g} s with {jobs} answers to record; every job "
                  f"had its event {done:.2f} s after Redis took writes again (lease 60 s); "
                  f"{sum(n == 1 for n in counts)} of {jobs} with exactly one event")  # fmt: skip
    finally:
        await bridge.stop(1)
        await admin.aclose()
        await runner.cleanup()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--cut", type=float, default=15.0, help="seconds the route is silent")
    parser.add_argument("--full", type=float, default=5.0, help="seconds Redis is full")
    args = parser.parse_args()
    logs.configure("CRITICAL")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(silent(args, Path(tmp)))
        asyncio.run(full(args, Path(tmp)))


if __name__ == "__main__":
    main()
