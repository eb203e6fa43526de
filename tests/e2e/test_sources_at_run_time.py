"""A source defined through the admin API, on two bridge replicas sharing one Redis:
both poll it within 2 s, with no restart; its jobs each get exactly one verified
event; deleted, it is polled no more and its watches go."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import auth, start_sim_and_receiver, subscribe, wait_until, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

DELIVERY = """
[delivery]
allow_private_targets = true
retry_schedule = [0.2]
"""


def polls(bridge: Bridge, source: str) -> float:
    value = bridge.metrics.registry.get_sample_value(
        "bridge_polls_total", {"source": source, "result": "ok"}
    )
    return value or 0.0


async def test_a_source_made_through_the_api_is_polled_by_every_replica(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> None:
    sim, server, receiver = await start_sim_and_receiver()
    cfg = write_config(tmp_path / "b.toml", server, redis_url=redis_server.url, prefix=prefix,
                       extra=DELIVERY)  # fmt: skip
    replicas = [Bridge(load_settings(cfg), redis_url=redis_server.url) for _ in range(2)]
    for replica in replicas:
        await replica.start()
    api = f"http://127.0.0.1:{replicas[0].api_port}"
    jobs = [f"acme-{i}" for i in range(12)]
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            await subscribe(http, api, receiver, "hooks")
            body = {"name": "acme-fs", "provider": "fullstory", "api_key": "sim-fullstory-key",
                    "base_url": str(server.make_url("")).rstrip("/"), "rate_limit": 0}  # fmt: skip
            made = time.monotonic()
            assert (await http.post(f"{api}/v1/sources", json=body)).status == 201

            async def everywhere() -> bool:
                return all("acme-fs" in r.live.current.configs for r in replicas if r.live)

            await wait_until(everywhere, 2, "the source on both replicas")
            for job in jobs:
                sim.add_job(JobSpec(provider="fullstory", id=job, duration=1.5))
                resp = await http.post(f"{api}/v1/watches",
                                       json={"source": "acme-fs", "job_id": job})  # fmt: skip
                assert resp.status == 201, await resp.text()

            async def polled_by_both() -> bool:
                return all(polls(r, "acme-fs") > 0 for r in replicas)

            await wait_until(polled_by_both, 10, "polls of it from both replicas")
            first = min(r.t for r in sim.state.requests if "/acme-" in r.path)
            assert first - (time.time() - (time.monotonic() - made)) < 2.0

            async def all_delivered() -> bool:
                seen = {x.body["data"]["job_id"] for x in receiver.for_path("hooks") if x.verified}
                return seen >= set(jobs)

            await wait_until(all_delivered, 30, "one verified event per job")
            ids = [x.webhook_id for x in receiver.for_path("hooks")]
            assert len(set(ids)) == len(jobs)  # exactly one event per job

            # deleted: no replica polls it, its running jobs' watches go, its events stay
            sim.add_job(JobSpec(provider="fullstory", id="acme-late", duration=60))
            late_watch = await http.post(
                f"{api}/v1/watches", json={"source": "acme-fs", "job_id": "acme-late"}
            )
            assert late_watch.status == 201
            assert (await http.delete(f"{api}/v1/sources/acme-fs")).status == 204

            async def gone_everywhere() -> bool:  # and each poller knows
                return not any(
                    "acme-fs" in r.live.current.configs or "acme-fs" in r.poller._sources  # type: ignore[union-attr]
                    for r in replicas
                    if r.live
                )

            await wait_until(gone_everywhere, 2, "the source gone from both replicas")
            known = time.time()  # every replica knows: from now on, not one request

            async def watch_dropped() -> bool:
                page = await (await http.get(f"{api}/v1/watches?source=acme-fs&limit=500")).json()
                return not [w for w in page["items"] if w["state"] == "watching"]

            await wait_until(watch_dropped, 5, "its running job's watch dropped")
            refused = await http.post(f"{api}/v1/watches",
                                      json={"source": "acme-fs", "job_id": "acme-x"})  # fmt: skip
            assert refused.status == 422
            events = await (await http.get(f"{api}/v1/events?source=acme-fs&limit=500")).json()
            assert len(events["items"]) == len(jobs)  # kept
            late = [r for r in sim.state.requests if "/acme-" in r.path and r.t > known]
            assert late == []  # its due watch was dropped, not polled
    finally:
        for replica in replicas:
            await replica.stop(grace_s=1)
        await receiver.close()
        await server.close()
