"""Two bridge processes on one Redis: one event per job, one shared rate limit,
fleet-wide 429 pauses, and one Talkdesk token per token lifetime."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp
import pytest

from bridge.sim.upstream import FaultSpec, JobSpec, SimState, Simulator
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import (
    BridgeProcess,
    auth,
    config_toml,
    events_by_watch,
    free_port,
    max_in_window,
    start_sim,
    wait_for_api,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

FS_RATE = 8.0
TD_RATE = 4.0
# Arrival times at the simulator jitter around the grant times in Redis (event-loop
# scheduling on a loaded 2-core CI machine); windows are shortened by this much.
JITTER_S = 0.1
TOKEN_TTL = 3.0


@pytest.fixture
async def fleet(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> AsyncIterator[tuple[Simulator, list[str], list[BridgeProcess]]]:
    sim = Simulator(SimState(token_ttl=TOKEN_TTL))
    server = await start_sim(sim)
    sim_url = str(server.make_url("")).rstrip("/")
    procs, apis = [], []
    for i in range(2):
        port = free_port()
        cfg = tmp_path / f"bridge{i}.toml"
        cfg.write_text(
            config_toml(
                sim_url=sim_url,
                redis_url=redis_server.url,
                prefix=prefix,
                port=port,
                fs_rate=FS_RATE,
                td_rate=TD_RATE,
                min_interval=0.05,
                max_interval=0.3,
            )
        )
        proc = BridgeProcess(cfg, tmp_path / f"bridge{i}.log")
        proc.start()
        procs.append(proc)
        apis.append(f"http://127.0.0.1:{port}")
    async with aiohttp.ClientSession() as http:
        for api in apis:
            await wait_for_api(http, api, "/readyz", ok=(200, 503))
    yield sim, apis, procs
    for proc in procs:
        proc.stop()
    await server.close()


async def test_two_replicas(fleet) -> None:  # type: ignore[no-untyped-def]
    """Exactly one event per job; combined request rate within each source's limit."""
    sim, apis, procs = fleet
    specs = [JobSpec(provider="fullstory", id=f"f{i}", duration=1 + i % 3) for i in range(12)]
    specs += [
        JobSpec(
            provider="talkdesk",
            id=f"t{i}",
            duration=1 + i % 2,
            final_status="COMPLETED_WITH_ERRORS",
            failed=1,
        )
        for i in range(8)
    ]
    for spec in specs:
        sim.add_job(spec)
    started = time.time()
    async with aiohttp.ClientSession(headers=auth()) as http:
        ids = set()
        for n, spec in enumerate(specs):
            body = {"source": "fs" if spec.provider == "fullstory" else "td", "job_id": spec.id}
            for api in (apis[n % 2], apis[(n + 1) % 2]):  # both replicas get every registration
                resp = await http.post(f"{api}/v1/watches", json=body)
                assert resp.status in (200, 201)
                ids.add((await resp.json())["id"])
        assert len(ids) == len(specs)

        async def finished() -> bool:
            page = await (await http.get(f"{apis[0]}/v1/watches?state=watching")).json()
            return not page["items"]

        await wait_until(finished, 60, "all jobs to finish")
        events = (await (await http.get(f"{apis[1]}/v1/events?limit=500")).json())["items"]
    per_watch = events_by_watch(events)
    assert set(per_watch) == ids
    assert all(len(types) == 1 for types in per_watch.values()), per_watch
    elapsed = time.time() - started
    for provider, rate in (("fullstory", FS_RATE), ("talkdesk", TD_RATE)):
        times = [r.t for r in sim.status_requests(provider)]
        assert times, provider
        for window in (0.5, 1.0, 2.0):
            assert max_in_window(times, window - JITTER_S) <= rate * window + 1, (provider, window)
        # and the limiter was the bottleneck, not idle: demand far exceeded the rate
        assert len(times) >= rate * elapsed * 0.5, (provider, len(times), elapsed)
    # One token per lifetime across both replicas (refreshed 10 % early).
    assert sim.state.tokens_issued <= elapsed / (TOKEN_TTL * 0.9) + 2
    for proc in procs:
        assert proc.stop() == 0


@pytest.mark.parametrize("form", ["429", "429_date"])
async def test_429_pauses_every_replica(fleet, form: str) -> None:  # type: ignore[no-untyped-def]
    """After a 429 with Retry-After, no process sends that source anything until it passes."""
    sim, apis, _ = fleet
    pause = 2.0
    for i in range(6):
        sim.add_job(JobSpec(provider="talkdesk", id=f"p{i}", duration=5))
    async with aiohttp.ClientSession(headers=auth()) as http:
        for i in range(6):
            await http.post(f"{apis[i % 2]}/v1/watches", json={"source": "td", "job_id": f"p{i}"})

        async def polling() -> bool:
            return len(sim.status_requests("talkdesk")) >= 3

        await wait_until(polling, 20, "polling to start")
        sim.add_fault(FaultSpec(kind=form, provider="talkdesk", retry_after=pause))  # type: ignore[arg-type]

        async def limited() -> bool:
            return any(r.status == 429 for r in sim.status_requests("talkdesk"))

        await wait_until(limited, 20, "the 429 to be served")
        hit = next(r for r in sim.status_requests("talkdesk") if r.status == 429)
        if form == "429_date":  # HTTP-dates have whole seconds: the pause ends at that second
            header_end = hit.t + pause
            pause_end = parsedate_to_datetime(
                time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(header_end))
            ).timestamp()
        else:
            pause_end = hit.t + pause

        async def resumed() -> bool:
            return any(r.t > hit.t and r.status != 429 for r in sim.status_requests("talkdesk"))

        await wait_until(resumed, 20, "polling to resume")
    during = [r for r in sim.status_requests("talkdesk") if hit.t < r.t < pause_end - JITTER_S]
    assert during == [], during


async def test_revoked_token_refreshed_once_fleet_wide(fleet) -> None:  # type: ignore[no-untyped-def]
    """Revoking every token makes the fleet fetch a new one and carry on."""
    sim, apis, _ = fleet
    for i in range(4):
        sim.add_job(JobSpec(provider="talkdesk", id=f"r{i}", duration=2.5))
    async with aiohttp.ClientSession(headers=auth()) as http:
        for i in range(4):
            await http.post(f"{apis[i % 2]}/v1/watches", json={"source": "td", "job_id": f"r{i}"})

        async def polled() -> bool:
            return sum(r.status == 200 for r in sim.status_requests("talkdesk")) >= 4

        await wait_until(polled, 20, "first polls")
        before = sim.state.tokens_issued
        sim.revoke_tokens()

        async def finished() -> bool:
            page = await (await http.get(f"{apis[0]}/v1/watches?state=terminal")).json()
            return len(page["items"]) == 4

        await wait_until(finished, 30, "jobs to finish after the revocation")
        assert sim.state.tokens_issued - before == 1
        status = await (await http.get(f"{apis[1]}/v1/status", headers=auth())).json()
        assert status["sources"]["td"]["healthy"] is True
