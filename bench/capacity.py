"""Redis bytes per finished job (with and without a 2 KB upstream body) and per
delivery, measured: the figures behind the README's capacity model.

One bridge process (all roles) on the embedded redis-server, the simulator and a
receiver answering 204, in this process. Each phase registers N jobs that have
already ended, waits until every one is terminal (and, with a subscription, every
delivery has succeeded), and reports INFO used_memory growth per job:

1. finished jobs, no subscription: the terminal watch, its event, the outbox entry;
2. the same with a 2 KB body in each answer;
3. finished jobs with one subscription: the above plus one succeeded delivery each
   (the difference from phase 1 is the delivery's own cost).

    .venv/bin/python bench/capacity.py [--jobs 5000]

Loopback only; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import TOKEN, used_memory
from sim_rig import sim_sources_toml, start_simulator

from bridge import logs
from bridge.app import Bridge
from bridge.model import WatchKey
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec, Simulator
from bridge.store.embedded import EmbeddedRedis


async def start_receiver() -> tuple[web.AppRunner, int, list[int]]:
    got: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        got.append(1)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1]), got


async def until(check: Callable[[], Awaitable[bool]], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within_s:g} s")
        await asyncio.sleep(0.2)


async def phase(
    bridge: Bridge,
    sim: Simulator,
    redis_url: str,
    tag: str,
    n: int,
    padding: int,
    delivered: list[int] | None,
) -> float:
    """Bytes of Redis memory per job that ended and was noticed (and delivered)."""
    assert bridge.store is not None
    store = bridge.store
    base = await used_memory(redis_url)
    delivered_before = len(delivered) if delivered is not None else 0
    keys = []
    for i in range(n):
        job_id = f"{tag}-{i:06d}"
        sim.add_job(JobSpec(provider="fullstory", id=job_id, duration=0, padding=padding))
        keys.append(WatchKey("fs", "users", job_id))
    for start in range(0, n, 1000):
        await store.register_many(keys[start : start + 1000], time.time())
    assert bridge.poller is not None
    bridge.poller.wake()

    async def all_terminal() -> bool:
        counts = await store.watch_counts()
        return counts["watching"] == 0

    await until(all_terminal, 300, f"{tag}: every job noticed")
    if delivered is not None:

        async def all_delivered() -> bool:
            return len(delivered) - delivered_before >= n

        await until(all_delivered, 300, f"{tag}: every delivery")
        await asyncio.sleep(1)  # the last attempts' records
    return (await used_memory(redis_url) - base) / n


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    args = parser.parse_args()
    logs.configure("warning")
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        redis = EmbeddedRedis(Path(tmp) / "redis", persist=False)
        redis.start()
        sim, sim_runner, sim_port = await start_simulator()
        receiver, receiver_port, delivered = await start_receiver()
        cfg = Path(tmp) / "bridge.toml"
        cfg.write_text(
            f'key_prefix = "capacity"\n[api]\nlisten = "127.0.0.1:0"\ntokens = ["{TOKEN}"]\n'
            "[poll]\nmin_interval = 0.2\nconcurrency = 64\n"
            '[delivery]\nallowed_targets = ["127.0.0.1"]\n' + sim_sources_toml(sim_port)
        )
        bridge = Bridge(load_settings(cfg), redis_url=redis.url)
        await bridge.start()
        try:
            n = args.jobs
            rows = {
                "finished job": await phase(bridge, sim, redis.url, "plain", n, 0, None),
                "finished job, 2 KB body": await phase(
                    bridge, sim, redis.url, "padded", n, 2048, None
                ),
            }
            api = f"http://127.0.0.1:{bridge.api_port}"
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                body = {"url": f"http://127.0.0.1:{receiver_port}/hook"}
                async with http.post(f"{api}/v1/subscriptions", json=body) as resp:
                    assert resp.status == 201, await resp.text()
            with_delivery = await phase(bridge, sim, redis.url, "delivered", n, 0, delivered)
            rows["finished job with one delivery"] = with_delivery
            rows["one delivery (the difference)"] = with_delivery - rows["finished job"]
        finally:
            await bridge.stop(grace_s=2)
            await receiver.cleanup()
            await sim_runner.cleanup()
            redis.stop()
    print(f"{'what':34} {'bytes':>8}")
    for name, value in rows.items():
        print(f"{name:34} {value:>8,.0f}")
    print(json.dumps({k: round(v) for k, v in rows.items()} | {"jobs": args.jobs}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
