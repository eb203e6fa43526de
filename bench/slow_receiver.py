"""What one slow receiver costs Redis: a subscription at its per-subscription cap with a
backlog, delivering to a receiver that takes --delay seconds per request. Prints the
Redis commands per second (client commands, and every command run inside scripts) and
the webhooks delivered per second over the window.

    .venv/bin/python bench/slow_receiver.py [--events 500] [--delay 5] [--window 20]

Loopback only: an embedded redis-server, the receiver in this process, one bridge
process (the deliverer role) in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from delivery_throughput import free_port, sample_event

from bridge.app import Bridge
from bridge.model import Role
from bridge.settings import load_settings
from bridge.store.deliveries import DeliveryStore
from bridge.store.embedded import EmbeddedRedis


async def counters(client: aioredis.Redis) -> tuple[int, int]:
    """(client commands processed, calls of every command incl. those inside scripts)."""
    stats = await client.info("stats")
    commandstats = await client.info("commandstats")
    inner = sum(int(v["calls"]) for v in commandstats.values() if isinstance(v, dict))
    return int(stats["total_commands_processed"]), inner


async def run(events: int, delay_s: float, window_s: float, tmp: Path, profile: bool) -> None:
    redis = EmbeddedRedis(tmp / "redis", persist=False)
    redis.start()
    answered = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal answered
        await request.read()
        await asyncio.sleep(delay_s)  # the slow receiver under test
        answered += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    cfg = tmp / "bench.toml"
    cfg.write_text(f"""
[api]
listen = "127.0.0.1:0"
[delivery]
allow_private_targets = true
timeout = {delay_s * 3}
[[subscriptions]]
url = "http://127.0.0.1:{port}/hook"
event_types = ["*"]
""")
    bridge = Bridge(load_settings(cfg), redis_url=redis.url, roles={Role.DELIVERER})
    await bridge.start()
    assert bridge.store is not None
    store = DeliveryStore(bridge.store)
    now = time.time()
    await store.emit_many([sample_event(i, now) for i in range(events)], now, 3600)
    bridge.deliverer.event_written()  # type: ignore[union-attr]
    await asyncio.sleep(2)  # the backlog fans out and the first attempts start
    watcher = aioredis.Redis.from_url(redis.url, decode_responses=True)
    c0, i0, a0, t0 = *await counters(watcher), answered, time.monotonic()
    await asyncio.sleep(window_s)
    c1, i1, a1, t1 = *await counters(watcher), answered, time.monotonic()
    elapsed = t1 - t0
    print(
        f"window {elapsed:.1f} s, per_subscription_concurrency 8, receiver {delay_s:g} s/request: "
        f"{(c1 - c0) / elapsed:.0f} client commands/s, {(i1 - i0) / elapsed:.0f} commands/s "
        f"incl. inside scripts, {(a1 - a0) / elapsed:.2f} webhooks/s"
    )
    if profile:
        by_command = await watcher.info("commandstats")
        top = sorted(by_command.items(), key=lambda kv: -int(kv[1]["calls"]))[:8]
        print("  busiest:", ", ".join(f"{k.removeprefix('cmdstat_')}={v['calls']}" for k, v in top))
    await watcher.aclose()
    await bridge.stop(1.0)
    await runner.cleanup()
    redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--delay", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--profile", action="store_true", help="print the busiest commands")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.events, args.delay, args.window, Path(tmp), args.profile))


if __name__ == "__main__":
    main()
