"""Redis as a dependency that fails, with real processes: a bridge process keeps
working through a Redis restart (with its AOF) and a Redis that comes back empty."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bridge.delivery.signing import new_secret
from bridge.sim.upstream import JobSpec, Simulator
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
from tests.e2e.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


@dataclass
class Rig:
    sim: Simulator
    receiver: Receiver
    redis: EmbeddedRedis
    bridge: BridgeProcess
    api: str
    log: Path
    http: aiohttp.ClientSession

    async def watch(self, job_id: str) -> str:
        self.sim.add_job(JobSpec(provider="fullstory", id=job_id, duration=0.2))
        resp = await self.http.post(
            f"{self.api}/v1/watches", json={"source": "fs", "job_id": job_id}
        )
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"])

    async def delivered(self, job_id: str, timeout_s: float) -> float:
        """Seconds until a verified webhook for the job arrived."""
        started = time.monotonic()

        async def arrived() -> bool:
            return any(
                r.verified and r.body["data"]["job_id"] == job_id
                for r in self.receiver.for_path("hooks")
            )

        await wait_until(arrived, timeout_s, f"the event of {job_id}")
        return time.monotonic() - started


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sim, server, receiver = await start_sim_and_receiver()
    redis = EmbeddedRedis(tmp_path / "redis", persist=True)
    redis.start()
    secret = new_secret()
    receiver.secrets["hooks"] = secret
    port = free_port()
    extra = f"""
[delivery]
allow_private_targets = true
retry_schedule = [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]

[[subscriptions]]
url = "{receiver.url("hooks")}"
secret = "{secret}"
"""
    cfg = write_config(
        tmp_path / "bridge.toml",
        server,
        redis_url=redis.url,
        prefix="faults",
        port=port,
        extra="",
    )
    cfg.write_text(cfg.read_text() + extra)
    log = tmp_path / "bridge.log"
    bridge = BridgeProcess(cfg, log)
    bridge.start()
    api = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            await wait_for_api(http, api, "/readyz")
            yield Rig(sim, receiver, redis, bridge, api, log, http)
    finally:
        bridge.kill()
        redis.stop()
        await receiver.close()
        await server.close()


def restart_empty(redis: EmbeddedRedis) -> None:
    """Stop Redis and start it again with no data: a failover to an empty replica."""
    redis.stop()
    for path in redis.data_dir.iterdir():
        if path.is_file():
            path.unlink()
        elif path.is_dir():
            for inner in path.iterdir():
                inner.unlink()
    redis.start()


async def test_redis_restarted_empty_while_running(rig: Rig) -> None:
    """After Redis comes back empty, new watches are polled and delivered within 5 s, with
    no restart of the bridge; the loss is logged once and counted; /readyz is 200."""
    await rig.watch("before")
    await rig.delivered("before", 20)
    restart_empty(rig.redis)
    await wait_for_api(rig.http, rig.api, "/readyz", timeout_s=10)
    await rig.watch("after")
    took = await rig.delivered("after", 15)
    print(f"measured: registration to verified delivery after an empty restart {took:.2f} s")
    assert took <= 5.0, f"delivered {took:.1f} s after registration"
    metrics = await (await rig.http.get(f"{rig.api}/metrics")).text()
    lost = [
        line for line in metrics.splitlines() if line.startswith("bridge_redis_data_lost_total")
    ]
    assert lost and float(lost[0].split()[-1]) >= 1
    assert (await rig.http.get(f"{rig.api}/readyz")).status == 200
    subs = await (await rig.http.get(f"{rig.api}/v1/subscriptions")).json()
    assert len(subs["items"]) == 1 and subs["items"][0]["static"]
    text = rig.log.read_text()
    assert text.count('"event": "redis_data_lost"') == 1 and "Traceback" not in text


async def test_redis_outage_with_aof(rig: Rig) -> None:
    """Redis stopped for two seconds and started with its AOF: a watch registered before
    is delivered after; the API answers 503 in the error shape meanwhile, never 500; the
    outage is one line when it starts and one when it ends."""
    await rig.watch("kept")
    rig.redis.stop()
    resp = await rig.http.get(f"{rig.api}/v1/watches")
    assert resp.status == 503 and (await resp.json())["code"] == "unavailable"
    ready = await rig.http.get(f"{rig.api}/readyz")
    assert ready.status == 503
    time_down = time.monotonic()
    while time.monotonic() - time_down < 2:
        await rig.http.get(f"{rig.api}/livez")
    rig.redis.start()
    await wait_for_api(rig.http, rig.api, "/readyz", timeout_s=15)
    await rig.delivered("kept", 20)
    for _ in range(20):  # pooled connections that went stale in the restart: no 500
        assert (await rig.http.get(f"{rig.api}/v1/watches")).status == 200
    text = rig.log.read_text()
    assert "Traceback" not in text
    assert text.count('"event": "redis_unavailable"') == 1
    assert text.count('"event": "redis_recovered"') == 1
