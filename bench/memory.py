"""Redis memory per watch, and the registration rate, through the admin API.

A real redis-server (the embedded one) and one bridge process-in-process with the API
role only (nothing is polled: memory "before any upstream answer"). Registers N watches
with single POST /v1/watches calls (16 clients at once), then M more through
POST /v1/watches/batch (1,000 a call, 4 clients at once), and reports INFO
used_memory growth per watch and watches registered per second, for each.

    .venv/bin/python bench/memory.py --single 20000 --batch 100000
    .venv/bin/python bench/memory.py --cluster   # the same on 3 primaries with replicas

On the cluster the growth is summed over the primaries (replicas hold copies), less
the replication backlog and replica buffers (see used_memory).
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the cluster's set-up

from sim_rig import sim_sources_toml

from bridge import logs
from bridge.app import Bridge
from bridge.model import Role
from bridge.settings import load_settings
from bridge.store.connection import RedisTarget, connect
from bridge.store.embedded import EmbeddedRedis
from tests.topologies import ClusterSet

TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - the benchmark's own


async def used_memory(urls: list[str]) -> int:
    """INFO used_memory summed over these servers (each asked on its own), less what
    replication holds: the backlog a primary fills up to its size as writes go out,
    and its replicas' output buffers (neither is the bridge's data; 0 without
    replicas)."""
    total = 0
    for url in urls:
        client = connect(url)
        try:
            info = await client.info("memory")
            total += int(info["used_memory"]) - int(info.get("mem_replication_backlog", 0))
            total -= int(info.get("mem_clients_slaves", 0))
        finally:
            await client.aclose()
    return total


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
    parser.add_argument("--cluster", action="store_true", help="3 primaries, a replica each")
    args = parser.parse_args()
    logs.configure("warning")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        stop: list[object] = []
        if args.cluster:
            cluster = ClusterSet(Path(tmp) / "cluster")
            cluster.start()
            target: str | RedisTarget = RedisTarget(url=cluster.url, cluster=True)
            primaries = [f"redis://127.0.0.1:{p}" for p in cluster.ports[: cluster.primaries]]
            stop.append(cluster)
            mode = f'redis_mode = "cluster"\nredis_url = "{cluster.url}"\n'
        else:
            redis = EmbeddedRedis(Path(tmp) / "redis", persist=False)
            redis.start()
            target, primaries, mode = redis.url, [redis.url], ""
            stop.append(redis)
        cfg = Path(tmp) / "bridge.toml"
        cfg.write_text(
            f'key_prefix = "bench"\n{mode}[api]\nlisten = "127.0.0.1:0"\n'
            f'tokens = ["{TOKEN}"]\n'
            + sim_sources_toml(9)  # never called: the API role polls nothing
        )
        bridge = Bridge(load_settings(cfg), redis_url=target, roles={Role.API})
        await bridge.start()
        api = f"http://127.0.0.1:{bridge.api_port}"
        try:
            base = await used_memory(primaries)
            rows = []
            if args.single:
                took = await register_single(api, args.single, 16, "single")
                after = await used_memory(primaries)
                rows.append(("single calls, 16 clients", args.single, after - base, took))
                base = after
            if args.batch:
                took = await register_batch(api, args.batch, 4, "batch")
                after = await used_memory(primaries)
                rows.append(("batch of 1,000, 4 clients", args.batch, after - base, took))
        finally:
            await bridge.stop(grace_s=1)
            for server in stop:
                server.stop()  # type: ignore[attr-defined]
    print(f"{'registration':28} {'watches':>9} {'bytes/watch':>12} {'watches/s':>10}")
    for name, n, grown, took in rows:
        print(f"{name:28} {n:>9,} {grown / n:>12,.0f} {n / took:>10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
