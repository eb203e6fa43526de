"""Two bridge processes on a primary behind Sentinel: the primary is killed -9 while
jobs finish, a replica is promoted, and every job still gets exactly one verified
event, with no bridge restarted."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bridge.sim.upstream import JobSpec
from tests.e2e.harness import (
    BridgeProcess,
    auth,
    config_toml,
    free_port,
    start_sim_and_receiver,
    subscribe,
    wait_for_api,
    wait_until,
)
from tests.topologies import MASTER, SentinelSet

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
SENTINEL_PASSWORD = "sentinel-secret-e2e"


async def test_a_primary_killed_mid_run_loses_no_event(tmp_path: Path) -> None:
    sentinels = SentinelSet(tmp_path / "redis", password=SENTINEL_PASSWORD)
    (tmp_path / "redis").mkdir()
    sentinels.start()
    sim, server, receiver = await start_sim_and_receiver()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "bridge_redis_sentinel_password").write_text(SENTINEL_PASSWORD)
    addresses = ", ".join(f'"127.0.0.1:{p}"' for p in sentinels.sentinel_ports)
    procs, apis = [], []
    try:
        for i in range(2):
            port = free_port()
            cfg = tmp_path / f"bridge{i}.toml"
            text = config_toml(
                sim_url=str(server.make_url("")).rstrip("/"),
                redis_url="redis://primary-named-by-sentinel/0",
                prefix="bridge",
                port=port,
                extra='[delivery]\nallowed_targets = ["127.0.0.1"]\n',
            )
            head = (
                f'redis_mode = "sentinel"\nredis_sentinels = [{addresses}]\n'
                f'redis_sentinel_master = "{MASTER}"\n'
            )
            cfg.write_text(head + text)
            proc = BridgeProcess(cfg, tmp_path / f"bridge{i}.log", "--secrets-dir", str(secrets))
            proc.start()
            procs.append(proc)
            apis.append(f"http://127.0.0.1:{port}")
        async with aiohttp.ClientSession(headers=auth()) as http:
            for api in apis:
                await wait_for_api(http, api, "/readyz")
            await subscribe(http, apis[0], receiver, "hook", event_types=["import.completed"])
            specs = [
                JobSpec(provider="fullstory", id=f"f{i}", duration=1 + i % 4) for i in range(16)
            ]
            for spec in specs:
                sim.add_job(spec)
            for n, spec in enumerate(specs):
                resp = await http.post(
                    f"{apis[n % 2]}/v1/watches", json={"source": "fs", "job_id": spec.id}
                )
                assert resp.status == 201, await resp.text()

            async def some_delivered() -> bool:
                return len(receiver.for_path("hook")) >= 3

            await wait_until(some_delivered, 30, "the first events")
            before = {r.body["data"]["job_id"] for r in receiver.for_path("hook")}
            old = sentinels.kill_primary()
            sentinels.wait_for_promotion(old)

            async def all_delivered() -> bool:
                ids = {r.body["data"]["job_id"] for r in receiver.for_path("hook")}
                return ids >= {s.id for s in specs}

            await wait_until(all_delivered, 90, "every job's event after the failover")
            assert len(before) < len(specs)  # the failover came mid-run
            for api in apis:  # both still serve, on the promoted primary
                await wait_for_api(http, api, "/readyz")
        received = receiver.for_path("hook")
        assert all(r.verified for r in received)
        per_job: dict[str, set[str]] = {}
        for r in received:
            per_job.setdefault(r.body["data"]["job_id"], set()).add(r.webhook_id)
        assert all(len(ids) == 1 for ids in per_job.values()), per_job
        for proc in procs:
            assert proc.proc is not None and proc.proc.poll() is None  # never restarted
    finally:
        for proc in procs:
            proc.stop()
        await receiver.close()
        await server.close()
        sentinels.stop()
