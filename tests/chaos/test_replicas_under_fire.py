"""Chaos (`make chaos`): three replicas killed with -9 in turn while a hostile receiver
answers at random, and Redis is restarted with its AOF in the middle. Every job still
gets exactly one event id, and every event reaches the subscriber, verified."""

from __future__ import annotations

import random
from pathlib import Path

import aiohttp
import pytest

from bridge.delivery.signing import new_secret
from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import (
    BridgeProcess,
    auth,
    free_port,
    start_sim_and_receiver,
    wait_for_api,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.redis]

JOBS = 60
KILLS = 9


async def test_three_replicas_kill_9_and_a_redis_restart(tmp_path: Path) -> None:
    """Exactly one event id per job, every event delivered at least once, verified."""
    rng = random.Random(8)
    sim, server, receiver = await start_sim_and_receiver()
    receiver.delay["hooks"] = 0.2
    # A hostile receiver: errors, 429 with Retry-After, then success
    receiver.scripts["hooks"] = [
        rng.choice([(500, {}), (429, {"Retry-After": "1"}), (503, {}), (200, {})])
        for _ in range(150)
    ]
    secret = new_secret()
    receiver.secrets["hooks"] = secret
    redis = EmbeddedRedis(tmp_path / "redis", persist=True)
    redis.start()
    ports = [free_port() for _ in range(3)]
    procs = []
    for i, port in enumerate(ports):
        cfg = write_config(
            tmp_path / f"bridge{i}.toml",
            server,
            redis_url=redis.url,
            prefix="chaos",
            port=port,
            fs_rate=20,
        )
        cfg.write_text(
            "shutdown_grace = 2\n"
            + cfg.read_text()
            + f"""
[delivery]
allow_private_targets = true
retry_schedule = [0.3, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
timeout = 2
lease_margin = 1

[[subscriptions]]
url = "{receiver.url("hooks")}"
secret = "{secret}"
"""
        )
        procs.append(BridgeProcess(cfg, tmp_path / f"bridge{i}.log"))
    apis = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for proc in procs:
            proc.start()
        async with aiohttp.ClientSession(headers=auth()) as http:
            for api in apis:
                await wait_for_api(http, api, "/readyz")
            for i in range(JOBS):
                sim.add_job(JobSpec(provider="fullstory", id=f"c{i}", duration=rng.uniform(0.2, 6)))
                await http.post(
                    f"{apis[i % 3]}/v1/watches", json={"source": "fs", "job_id": f"c{i}"}
                )
            for k in range(KILLS):
                victim = procs[k % 3]
                victim.kill()
                if k == KILLS // 2:
                    redis.stop()  # a Redis restart with its AOF while everything runs
                    redis.start()
                victim.start()
                await wait_for_api(http, apis[k % 3], "/livez")

            async def all_delivered() -> bool:
                got = {r.body["data"]["job_id"] for r in receiver.for_path("hooks") if r.verified}
                return len(got) == JOBS

            await wait_until(all_delivered, 120, "every job's event at the receiver")
            events: dict[str, set[str]] = {}
            cursor = None
            while True:
                url = f"{apis[0]}/v1/events?limit=100" + (f"&cursor={cursor}" if cursor else "")
                page = await (await http.get(url)).json()
                for e in page["items"]:
                    events.setdefault(e["data"]["job_id"], set()).add(e["id"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
        assert len(events) == JOBS and all(len(ids) == 1 for ids in events.values())
        by_id: dict[str, set[str]] = {}
        for r in receiver.for_path("hooks"):
            assert r.verified
            by_id.setdefault(r.webhook_id, set()).add(r.body["data"]["job_id"])
        assert all(len(jobs) == 1 for jobs in by_id.values())
    finally:
        for proc in procs:
            proc.kill()
        redis.stop()
        await receiver.close()
        await server.close()
