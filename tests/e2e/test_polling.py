"""Simulator → bridge → events API, over real sockets and a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec, Simulator
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import auth, config_toml, job_path, start_sim, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

JOBS = [
    JobSpec(
        provider="fullstory", kind="users", id="fs-u-ok", duration=0.6, final_status="COMPLETED"
    ),
    JobSpec(
        provider="fullstory",
        kind="events",
        id="fs-e-fail",
        duration=0.8,
        final_status="FAILED",
        failed=3,
    ),
    JobSpec(provider="talkdesk", id="td-ok", duration=0.7, final_status="COMPLETED"),
    JobSpec(
        provider="talkdesk",
        id="td-errs",
        duration=0.9,
        final_status="COMPLETED_WITH_ERRORS",
        failed=5,
    ),
    JobSpec(provider="talkdesk", id="td-fail", duration=0.5, final_status="FAILED"),
    JobSpec(provider="talkdesk", id="td-cancel", duration=0.6, final_status="CANCELED"),
]
EXPECTED = {
    "fs-u-ok": "import.completed",
    "fs-e-fail": "import.failed",
    "td-ok": "import.completed",
    "td-errs": "import.completed_with_errors",
    "td-fail": "import.failed",
    "td-cancel": "import.canceled",
    "missing": "import.not_found",
}


@pytest.fixture
async def running(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> AsyncIterator[tuple[Simulator, Bridge, str]]:
    sim = Simulator()
    server = await start_sim(sim)
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(
        config_toml(
            sim_url=str(server.make_url("")).rstrip("/"), redis_url=redis_server.url, prefix=prefix
        )
    )
    bridge = Bridge(load_settings(cfg), redis_url=redis_server.url)
    await bridge.start()
    yield sim, bridge, f"http://127.0.0.1:{bridge.api_port}"
    await bridge.stop()
    await server.close()


async def test_every_terminal_status_once(running) -> None:  # type: ignore[no-untyped-def]
    """Each job reaches its outcome with exactly one event, and no poll follows a terminal answer."""
    sim, bridge, api = running
    for spec in JOBS:
        sim.add_job(spec)
    async with aiohttp.ClientSession(headers=auth()) as http:
        watch_ids: dict[str, str] = {}
        for spec in JOBS:
            src = "fs" if spec.provider == "fullstory" else "td"
            resp = await http.post(
                f"{api}/v1/watches", json={"source": src, "kind": spec.kind, "job_id": spec.id}
            )
            assert resp.status == 201
            watch_ids[spec.id] = (await resp.json())["id"]
        resp = await http.post(f"{api}/v1/watches", json={"source": "fs", "job_id": "missing"})
        watch_ids["missing"] = (await resp.json())["id"]

        async def all_done() -> bool:
            page = await (await http.get(f"{api}/v1/watches?state=watching")).json()
            return not page["items"]

        await wait_until(all_done, 20, "every watch to finish")
        for job_id, watch_id in watch_ids.items():
            events = (await (await http.get(f"{api}/v1/events?watch_id={watch_id}")).json())[
                "items"
            ]
            assert [e["type"] for e in events] == [EXPECTED[job_id]], job_id
            view = await (await http.get(f"{api}/v1/watches/{watch_id}")).json()
            assert view["outcome"] == EXPECTED[job_id].removeprefix("import.")
            assert view["terminal_at"] and view["next_poll_at"] is None
            one = await (await http.get(f"{api}/v1/events/{events[0]['id']}")).json()
            assert one["data"]["job_id"] == job_id and one["data"]["watch_id"] == watch_id
    await bridge.stop()
    for spec in JOBS:  # every request after the job ended got the terminal answer: only one
        path = job_path(spec.provider, spec.kind, spec.id)
        created = sim.state.jobs[(spec.provider, spec.kind, spec.id)].created
        after_end = [
            r for r in sim.state.requests if r.path == path and r.t >= created + spec.duration
        ]
        assert len(after_end) == 1, (spec.id, len(after_end))
    missing = [r for r in sim.state.requests if r.path.endswith("/missing")]
    assert [r.status for r in missing] == [404, 404, 404]
    assert await bridge_outbox_len(running) == len(EXPECTED)


async def bridge_outbox_len(running) -> int:  # type: ignore[no-untyped-def]
    from bridge.store.connection import connect
    from bridge.store.redis import RedisStore

    _, bridge, _ = running
    client = connect(bridge._redis_url)
    try:
        return await RedisStore(client, bridge.settings.key_prefix).events.outbox_length()
    finally:
        await client.aclose()


async def test_faults_do_not_lose_jobs(running) -> None:  # type: ignore[no-untyped-def]
    """5xx, garbage, HTML, oversize and too-slow answers are retried; the job finishes once."""
    from bridge.sim.upstream import FaultSpec

    sim, _, api = running
    sim.add_job(JobSpec(provider="fullstory", id="flaky", duration=0.3))
    for kind in ("500", "garbage", "html", "huge", "503"):
        sim.add_fault(FaultSpec(kind=kind, provider="fullstory"))  # type: ignore[arg-type]
    sim.add_fault(FaultSpec(kind="slow", provider="fullstory", delay=3))  # > request_timeout
    async with aiohttp.ClientSession(headers=auth()) as http:
        resp = await http.post(f"{api}/v1/watches", json={"source": "fs", "job_id": "flaky"})
        watch_id = (await resp.json())["id"]

        async def done() -> bool:
            view = await (await http.get(f"{api}/v1/watches/{watch_id}")).json()
            return bool(view["state"] == "terminal")

        await wait_until(done, 30, "the flaky job to finish")
        events = (await (await http.get(f"{api}/v1/events?watch_id={watch_id}")).json())["items"]
        assert [e["type"] for e in events] == ["import.completed"]
        view = await (await http.get(f"{api}/v1/watches/{watch_id}")).json()
        assert view["polls"] >= 7
