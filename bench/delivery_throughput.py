"""Deliveries per second of one bridge process to a local receiver, next to a bare
aiohttp POST loop against the same receiver in the same run; then p50/p99 of the
time from event generation to the receiver's 2xx under a steady load.

    .venv/bin/python bench/delivery_throughput.py [--events 5000] [--rounds 3]

Loopback only: a real redis-server (embedded), the receiver as a separate process
(an aiohttp app answering 204), the measured client in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bridge.app import Bridge
from bridge.events import iso_ms
from bridge.model import DeliveryStatus, Event, Role
from bridge.settings import load_settings
from bridge.store.deliveries import DeliveryStore
from bridge.store.embedded import EmbeddedRedis

STALL_S = 60.0

RECEIVER = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.Response(status=204)
app = web.Application()
app.router.add_post("/hook", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.post(url, data=b"{}"):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError("receiver did not start")


def sample_event(i: int, now: float) -> Event:
    return Event(
        id=f"evt_bench_{i}_{int(now * 1000)}",
        type="import.completed",
        timestamp=iso_ms(now),
        watch_id=f"w_{i}",
        data={
            "source": "fs",
            "provider": "fullstory",
            "kind": "users",
            "job_id": f"j{i}",
            "status": "COMPLETED",
            "outcome": "completed",
            "counts": {"total": 100, "succeeded": 100, "failed": 0},
            "job": {"imports": 100, "job": {"id": f"j{i}", "status": "COMPLETED"}},
        },
    )


async def bare_loop(url: str, n: int, concurrency: int) -> float:
    body = json.dumps(sample_event(0, time.time()).envelope()).encode()
    headers = {"content-type": "application/json"}
    left = n
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with http.post(url, data=body, headers=headers) as r:
                    await r.read()

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.monotonic() - started)


async def bridge_bench(
    url: str,
    redis_url: str,
    tmp: Path,
    n: int,
    concurrency: int,
    steady_rate: float,
    steady_s: float,
) -> tuple[float, list[float]]:
    cfg = tmp / "bench.toml"
    cfg.write_text(f"""
key_prefix = "dbench{time.time_ns()}"
[api]
listen = "127.0.0.1:0"
[poll]
tick = 0.05
[delivery]
allow_private_targets = true
concurrency = {concurrency}
per_subscription_concurrency = {concurrency}
[[subscriptions]]
url = "{url}"
event_types = ["*"]
""")
    bridge = Bridge(load_settings(cfg), redis_url=redis_url, roles={Role.DELIVERER})
    await bridge.start()
    assert bridge.store is not None
    assert bridge.deliverer is not None
    store = DeliveryStore(bridge.store)

    # Throughput: a burst of n events already in the outbox, timed from the deliverer's
    # wake-up to the last recorded 2xx (fan-out, claim, signing, POST, record).
    now = time.time()
    await store.emit_many([sample_event(i, now) for i in range(n)], now, 3600)
    started = time.monotonic()
    await bridge.deliverer.tick()
    # Polls Redis state, which offers no event to wait on; a run that stops making
    # progress ends with what it saw instead of waiting forever.
    keys, client = bridge.store.keys, bridge.store.client
    progress, last_move = None, time.monotonic()
    while True:
        created = await client.zcard(keys.deliveries)
        due, leased = (
            await client.zcard(keys.deliveries_due),
            await client.zcard(keys.deliveries_leases),
        )
        busy = bridge.deliverer.pool.busy
        if created >= n and not due and not leased and not busy:
            break
        if (created, due, leased) != progress:
            progress, last_move = (created, due, leased), time.monotonic()
        elif time.monotonic() - last_move > STALL_S:
            raise RuntimeError(
                f"no progress for {STALL_S:.0f} s: {created} of {n} deliveries created,"
                f" {due} due, {leased} leased, {busy} in flight"
            )
        await asyncio.sleep(0.05)
    rate = n / (time.monotonic() - started)

    # Latency: a steady stream well below capacity; generation → receiver 2xx.
    first = n
    steady_n = int(steady_rate * steady_s)
    for k in range(steady_n):
        t = time.time()
        await store.emit(sample_event(first + k, t), t, 3600)
        bridge.deliverer.event_written()  # what a poller in the same process does
        await asyncio.sleep(1 / steady_rate)
    await asyncio.sleep(1.0)
    lags: list[float] = []
    cursor = None
    while True:
        items, cursor = await store.list_deliveries(
            status=DeliveryStatus.SUCCEEDED, cursor=cursor, limit=500
        )
        for d in items:
            if d.event_id.startswith("evt_bench_") and int(d.event_id.split("_")[2]) >= first:
                lags.append(d.attempts[-1].at - d.detected_at)
        if cursor is None:
            break
    await bridge.stop(grace_s=2)
    return rate, lags


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--steady-rate", type=float, default=200.0)
    parser.add_argument("--steady-seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        redis = EmbeddedRedis(tmp / "redis", persist=False)
        redis.start()
        port = free_port()
        receiver = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RECEIVER,
            str(port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/hook"
        try:
            await wait_for(url)
            bares, bridges, lags = [], [], []
            for _ in range(args.rounds):
                bares.append(await bare_loop(url, args.events, args.concurrency))
                rate, lag = await bridge_bench(
                    url,
                    redis.url,
                    tmp,
                    args.events,
                    args.concurrency,
                    args.steady_rate,
                    args.steady_seconds,
                )
                bridges.append(rate)
                lags += lag
        finally:
            receiver.terminate()
            await receiver.wait()
            redis.stop()
    lags.sort()
    bare, bridged = statistics.median(bares), statistics.median(bridges)
    result = {
        "bare_post_per_s": round(bare),
        "bridge_deliveries_per_s": round(bridged),
        "ratio": round(bridged / bare, 3),
        "rounds": {"bare": [round(b) for b in bares], "bridge": [round(b) for b in bridges]},
        "steady_rate_per_s": args.steady_rate,
        "lag_p50_ms": round(lags[len(lags) // 2] * 1000, 1) if lags else None,
        "lag_p99_ms": round(lags[int(len(lags) * 0.99)] * 1000, 1) if lags else None,
        "lag_samples": len(lags),
        "events": args.events,
        "concurrency": args.concurrency,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
