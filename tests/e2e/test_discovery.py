"""Talkdesk discovery over real sockets: imports created upstream and never registered
each produce exactly one event, with two replicas looking at the list."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import auth, start_sim_and_receiver, wait_until, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

DELIVERY = """
[delivery]
allow_private_targets = true
retry_schedule = [0.3, 0.3]
"""


@pytest.mark.parametrize("links", ["absolute", "relative", "foreign"])
async def test_two_replicas_discover_each_import_once(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str, links: str
) -> None:
    """130 imports over three pages of the list (some finished before anyone looked,
    some running), plus 10 older than discover_since: each recent one is watched once,
    marked discovered, and gives one signed event; the old ones are left alone; the
    list is read inside the source's rate budget. The next link may be absolute, a
    path, or on another host (then read from the configured one)."""
    sim, server, receiver = await start_sim_and_receiver()
    sim.state.list_links = links  # type: ignore[assignment]
    cfg = write_config(
        tmp_path / "bridge.toml", server, redis_url=redis_server.url, prefix=prefix,
        extra=DELIVERY, td_rate=20,
    )  # fmt: skip
    cfg.write_text(
        cfg.read_text() + "discover = true\ndiscover_interval = 1\ndiscover_since = 3600\n"
    )
    for i in range(10):
        old = sim.add_job(JobSpec(provider="talkdesk", id=f"old-{i}", duration=1))
        old.created = time.time() - 7200
    for i in range(130):
        sim.add_job(JobSpec(provider="talkdesk", id=f"imp-{i}", duration=0 if i % 3 == 0 else 2))
    for odd in ("..", "a/b"):  # ids no one could register: never watched
        sim.add_job(JobSpec(provider="talkdesk", id=odd, duration=1))
    settings = load_settings(cfg)
    bridges = [Bridge(settings, redis_url=redis_server.url) for _ in range(2)]
    http = aiohttp.ClientSession(headers=auth())
    try:
        await bridges[0].start()
        api = f"http://127.0.0.1:{bridges[0].api_port}"
        resp = await http.post(f"{api}/v1/subscriptions", json={"url": receiver.url("d")})
        receiver.secrets["d"] = (await resp.json())["secret"]
        await bridges[1].start()

        async def all_told() -> bool:
            return len(receiver.for_path("d")) >= 130

        await wait_until(all_told, 60, "an event per import")
        got = receiver.for_path("d")
        jobs = sorted(r.body["data"]["job_id"] for r in got)
        assert jobs == sorted(f"imp-{i}" for i in range(130))  # each once, no old ones
        assert all(r.verified and r.body["type"] == "import.completed" for r in got)
        page = await (await http.get(f"{api}/v1/watches", params={"limit": "500"})).json()
        assert len(page["items"]) == 130 and all(w["discovered"] for w in page["items"])
        assert sum(b.discovery.registered for b in bridges if b.discovery) == 130
        lists = [r for r in sim.state.requests if r.path == "/bulk-imports/users"]
        assert len(lists) >= 3, "every page of the list was read"
    finally:
        await http.close()
        for bridge in bridges:
            await bridge.stop(grace_s=1)
        await receiver.close()
        await server.close()
