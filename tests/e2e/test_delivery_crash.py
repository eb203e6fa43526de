"""kill -9 of the bridge during deliveries, then a restart: nothing is lost."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

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

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

DELIVERY = """
[delivery]
allow_private_targets = true
retry_schedule = [0.3, 0.3, 0.3, 0.3, 0.3]
timeout = 2
lease_margin = 1
"""
JOBS = 6


async def test_kill_9_loses_nothing(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> None:
    """Every event reaches every subscriber; repeats carry the same webhook-id."""
    sim, server, receiver = await start_sim_and_receiver()
    receiver.delay = {"a": 0.4, "b": 0.4}  # deliveries are in flight when the kill lands
    port = free_port()
    cfg = write_config(
        tmp_path / "bridge.toml",
        server,
        redis_url=redis_server.url,
        prefix=prefix,
        port=port,
        extra=DELIVERY,
    )
    api = f"http://127.0.0.1:{port}"
    first = BridgeProcess(cfg, tmp_path / "first.log")
    second = BridgeProcess(cfg, tmp_path / "second.log")
    first.start()
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            await wait_for_api(http, api)
            for path in ("a", "b"):
                resp = await http.post(f"{api}/v1/subscriptions", json={"url": receiver.url(path)})
                receiver.secrets[path] = (await resp.json())["secret"]
            for i in range(JOBS):
                sim.add_job(JobSpec(provider="fullstory", id=f"k{i}", duration=0.2 + 0.1 * i))
                await http.post(f"{api}/v1/watches", json={"source": "fs", "job_id": f"k{i}"})

            async def some_in_flight() -> bool:
                return len(receiver.received) >= 3

            await wait_until(some_in_flight, 30, "the first deliveries")
            first.kill()
            delivered_before = len(receiver.received)
            second.start()

            async def all_delivered() -> bool:
                return all(
                    len({r.webhook_id for r in receiver.for_path(p)}) == JOBS for p in ("a", "b")
                )

            await wait_until(all_delivered, 60, "every event at every subscriber")
        assert delivered_before < 2 * JOBS  # the kill did land mid-way
        for path in ("a", "b"):
            got = receiver.for_path(path)
            assert all(r.verified for r in got)
            by_id: dict[str, set[str]] = {}
            for r in got:
                by_id.setdefault(r.webhook_id, set()).add(r.body["data"]["job_id"])
            assert all(len(jobs) == 1 for jobs in by_id.values())  # a repeat is the same event
            assert {j for jobs in by_id.values() for j in jobs} == {f"k{i}" for i in range(JOBS)}
    finally:
        first.kill()
        second.stop()
        await receiver.close()
        await server.close()
