"""Redis as a dependency that hangs rather than fails, with real processes: a Redis
that stops answering (a black-holed route) and a Redis full at maxmemory. The bridge
answers 503 instead of hanging or failing with 500, says each state once, and every job
still gets exactly one event once Redis is back. bench/redis_faults.py measures how
soon."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bridge.delivery.signing import new_secret
from bridge.sim.upstream import FaultSpec, JobSpec, Simulator
from bridge.store.connection import connect
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.blackhole import BlackholeProxy
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


def config(tmp: Path, name: str, server: object, redis_url: str, port: int, secret: str,
           receiver: Receiver, lease: float = 5) -> Path:  # fmt: skip
    cfg = write_config(tmp / f"{name}.toml", server, redis_url=redis_url,  # type: ignore[arg-type]
                       prefix="hang", port=port)  # fmt: skip
    text = cfg.read_text().replace("lease = 5\n", f"lease = {lease}\n")
    cfg.write_text(f"""{text}
[delivery]
allow_private_targets = true
retry_schedule = [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]

[[subscriptions]]
url = "{receiver.url("hooks")}"
secret = "{secret}"
""")
    return cfg


async def register(http: aiohttp.ClientSession, api: str, sim: Simulator, jobs: list[str],
                   duration: float) -> None:  # fmt: skip
    for job in jobs:
        sim.add_job(JobSpec(provider="fullstory", id=job, duration=duration))
        resp = await http.post(f"{api}/v1/watches", json={"source": "fs", "job_id": job})
        assert resp.status == 201, await resp.text()


async def one_event_each(receiver: Receiver, jobs: list[str], within_s: float) -> None:
    """Every job's event arrived, verified; one event id per job, however many tries."""

    async def all_in() -> bool:
        got = {r.body["data"]["job_id"] for r in receiver.for_path("hooks") if r.verified}
        return got >= set(jobs)

    await wait_until(all_in, within_s, "an event for every job")
    ids: dict[str, set[str]] = {}
    for r in receiver.for_path("hooks"):
        ids.setdefault(r.body["data"]["job_id"], set()).add(r.webhook_id)
    assert all(len(ids[job]) == 1 for job in jobs), ids


async def test_a_redis_that_goes_silent(tmp_path: Path) -> None:
    """One of two replicas reaches Redis through a route that goes silent (no reset, no
    refusal): its readiness and its API answer 503 instead of hanging, the outage is one
    line at each end and no scheduler warning every beat; healed, it is ready again,
    and every job has exactly one event id (the other replica took the work over)."""
    sim, server, receiver = await start_sim_and_receiver()
    secret = new_secret()
    receiver.secrets["hooks"] = secret
    redis = EmbeddedRedis(tmp_path / "redis", persist=False)
    redis.start()
    proxy = BlackholeProxy(redis.socket)
    await proxy.start()
    ports = [free_port(), free_port()]
    procs = [
        BridgeProcess(config(tmp_path, "cut", server, proxy.url, ports[0], secret, receiver),
                      tmp_path / "cut.log"),
        BridgeProcess(config(tmp_path, "direct", server, redis.url, ports[1], secret, receiver),
                      tmp_path / "direct.log"),
    ]  # fmt: skip
    cut_api, direct_api = (f"http://127.0.0.1:{p}" for p in ports)
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            for proc, api in zip(procs, (cut_api, direct_api), strict=True):
                proc.start()
                await wait_for_api(http, api, "/readyz")
            jobs = [f"silent-{i}" for i in range(20)]
            await register(http, cut_api, sim, jobs, duration=1.5)
            proxy.cut()
            bounded = aiohttp.ClientTimeout(total=8)  # main answered neither within 12 s
            ready = await http.get(f"{cut_api}/readyz", timeout=bounded)
            assert ready.status == 503
            refused = await http.post(f"{cut_api}/v1/watches", timeout=bounded,
                                      json={"source": "fs", "job_id": "during"})  # fmt: skip
            body = await refused.json()
            assert refused.status == 503 and body["code"] == "unavailable", body
            late = [f"late-{i}" for i in range(5)]  # the other replica still takes work
            await register(http, direct_api, sim, late, duration=0.5)
            await one_event_each(receiver, late, 30)
            proxy.heal()
            await wait_for_api(http, cut_api, "/readyz", timeout_s=30)
            await one_event_each(receiver, jobs + late, 30)
            after = [f"after-{i}" for i in range(3)]  # the healed replica works again
            await register(http, cut_api, sim, after, duration=0.2)
            await one_event_each(receiver, jobs + late + after, 30)
    finally:
        for proc in procs:
            proc.kill()
        await proxy.close()
        redis.stop()
        await receiver.close()
        await server.close()
    text = (tmp_path / "cut.log").read_text()
    assert text.count('"event": "redis_unavailable"') == 1, text[-3000:]
    assert text.count('"event": "redis_recovered"') == 1
    assert "maximum number of running instances" not in text and "Traceback" not in text
    assert '"roles": ["api", "deliverer", "poller"]' in text  # names, not enum reprs


async def test_a_full_redis(tmp_path: Path) -> None:
    """Redis at maxmemory with noeviction, while jobs end upstream: a registration gets
    503 in the error shape with no traceback, the state is one line at each end; polls
    whose record was refused keep it and write it once Redis takes writes again, well
    before their lease (60 s) would have run out: every job has its one event."""
    sim, server, receiver = await start_sim_and_receiver()
    secret = new_secret()
    receiver.secrets["hooks"] = secret
    redis = EmbeddedRedis(tmp_path / "redis", persist=False)
    redis.start()
    port = free_port()
    cfg = config(tmp_path, "full", server, redis.url, port, secret, receiver, lease=60)
    proc = BridgeProcess(cfg, tmp_path / "full.log")
    api = f"http://127.0.0.1:{port}"
    admin = connect(redis.url)
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            proc.start()
            await wait_for_api(http, api, "/readyz")
            jobs = [f"full-{i}" for i in range(20)]
            # every first poll is answered only after 1.5 s: Redis fills meanwhile, and
            # the answers (COMPLETED) come back to a Redis that refuses their record
            sim.add_fault(FaultSpec(kind="slow", provider="fullstory", delay=1.5, count=20))
            await register(http, api, sim, jobs, duration=0)

            async def all_in_flight() -> bool:
                return sim.state.faults[0].left == 0

            await wait_until(all_in_flight, 10, "every first poll at the upstream")
            await admin.config_set("maxmemory-policy", "noeviction")
            await admin.config_set("maxmemory", "1")
            refused = await http.post(f"{api}/v1/watches", json={"source": "fs", "job_id": "x"})
            body = await refused.json()
            assert refused.status == 503 and body["code"] == "unavailable", body
            assert "Retry-After" in refused.headers
            refused_before = int((await admin.info("stats"))["total_error_replies"])

            async def all_answered() -> bool:
                return len(sim.status_requests("fullstory")) >= len(jobs)

            await wait_until(all_answered, 10, "every first poll answered")

            async def refused_again() -> bool:  # each answer's record refused, then retried
                stats = await admin.info("stats")
                return int(stats["total_error_replies"]) >= refused_before + 2 * len(jobs)

            await wait_until(refused_again, 20, "the records refused and tried again")
            assert await admin.xlen("{hang}:outbox") == 0  # nothing could be written
            await admin.config_set("maxmemory", "0")
            await one_event_each(receiver, jobs, 15)  # the lease alone would take 60 s
    finally:
        proc.kill()
        await admin.aclose()
        redis.stop()
        await receiver.close()
        await server.close()
    text = (tmp_path / "full.log").read_text()
    assert "Traceback" not in text and '"status": 500' not in text
    assert text.count('"event": "redis_refusing_writes"') == 1, text[-3000:]
    assert text.count('"event": "redis_accepting_writes"') == 1
