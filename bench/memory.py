"""Redis memory per watch, and the registration rate, through the admin API.

A real redis-server (the embedded one) and one bridge process-in-process with the API
role only (nothing is polled: memory "before any upstream answer"). Registers N watches
with single POST /v1/watches calls (16 clients at once), then M more through
POST /v1/watches/batch (1,000 a call, 4 clients at once), and reports INFO
used_memory growth per watch and watches registered per second, for each.

    .venv/bin/python bench/memory.py --single 20000 --batch 100000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim_rig import sim_sources_toml

from bridge import logs
from bridge.app import Bridge
from bridge.model import Role
from bridge.settings import load_settings
from bridge.store.connection import connect
from bridge.store.embedded import EmbeddedRedis

TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - the benchmark's own


async def used_memory(url: str) -> int:
    client = connect(url)
    try:
        return int((await client.info("memory"))["used_memory"])
    finally:
        await client.aclose()


async def register_single(api: str, n: int, clients: int, tag: str) -> float:
    """Seconds to register n watches, one call each, `clients` at a time."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = {"source": "fs", "job_id": f"{tag}-{i:08d}"}
                async with http.post(f"{api}/v1/watches", json=body) as resp:
                    assert resp.status == 201, await resp.text()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - started


async def register_batch(api: str, n: int, clients: int, tag: str, size: int = 1000) -> float:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for start in range(0, n, size):
            queue.put_nowait(start)

        async def worker() -> None:
            while not queue.empty():
                start = queue.get_nowait()
                items = [
                    {"source": "fs", "job_id": f"{tag}-{i:08d}"}
                    for i in range(start, min(n, start + size))
                ]
                async with http.post(f"{api}/v1/watches/batch", json={"items": items}) as resp:
                    assert resp.status == 200, await resp.text()
                    answers = (await resp.json())["items"]
                    assert all(a["status"] == 201 for a in answers), answers[:3]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - started


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100_000)
    args = parser.parse_args()
    logs.configure("warning")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        redis = EmbeddedRedis(Path(tmp) / "redis", persist=False)
        redis.start()
        cfg = Path(tmp) / "bridge.toml"
        cfg.write_text(
            f'key_prefix = "bench"\n[api]\nlisten = "127.0.0.1:0"\ntokens = ["{TOKEN}"]\n'
            + sim_sources_toml(9)  # never called: the API role polls nothing
        )
        bridge = Bridge(load_settings(cfg), redis_url=redis.url, roles={Role.API})
        await bridge.start()
        api = f"http://127.0.0.1:{bridge.api_port}"
        try:
            base = await used_memory(redis.url)
            rows = []
            if args.single:
                took = await register_single(api, args.single, 16, "single")
                after = await used_memory(redis.url)
                rows.append(("single calls, 16 clients", args.single, after - base, took))
                base = after
            if args.batch:
                took = await register_batch(api, args.batch, 4, "batch")
                after = await used_memory(redis.url)
                rows.append(("batch of 1,000, 4 clients", args.batch, after - base, took))
        finally:
            await bridge.stop(grace_s=1)
            redis.stop()
    print(f"{'registration':28} {'watches':>9} {'bytes/watch':>12} {'watches/s':>10}")
    for name, n, grown, took in rows:
        print(f"{name:28} {n:>9,} {grown / n:>12,.0f} {n / took:>10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
