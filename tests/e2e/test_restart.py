"""`bridge run` on its embedded Redis, stopped and started again: watches,
subscriptions and pending deliveries are still there."""

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
    wait_for_api,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

DELIVERY = """
[delivery]
allow_private_targets = true
retry_schedule = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
"""


async def test_embedded_redis_state_survives_a_restart(tmp_path: Path) -> None:
    """A watch still polled, a subscription and a delivery still failing before the
    stop are all there after the start; the delivery then arrives (same webhook-id)."""
    sim, server, receiver = await start_sim_and_receiver()
    receiver.scripts["down"] = [(503, {})] * 1000  # down until told otherwise
    port = free_port()
    cfg = tmp_path / "bridge.toml"
    text = config_toml(
        sim_url=str(server.make_url("")).rstrip("/"),
        redis_url="",
        prefix="restart",
        port=port,
        extra=DELIVERY,
    )
    cfg.write_text(text.replace('redis_url = ""\n', ""))  # no redis_url: the embedded one
    data = tmp_path / "data"
    api = f"http://127.0.0.1:{port}"
    first = BridgeProcess(cfg, tmp_path / "first.log", "--data-dir", str(data))
    second = BridgeProcess(cfg, tmp_path / "second.log", "--data-dir", str(data))
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            first.start()
            await wait_for_api(http, api, "/readyz")
            resp = await http.post(f"{api}/v1/subscriptions", json={"url": receiver.url("down")})
            sub = await resp.json()
            receiver.secrets["down"] = sub["secret"]
            sim.add_job(JobSpec(provider="fullstory", id="long", duration=3600))
            sim.add_job(JobSpec(provider="talkdesk", id="short", duration=0.2))
            for source, job in (("fs", "long"), ("td", "short")):
                await http.post(f"{api}/v1/watches", json={"source": source, "job_id": job})

            async def failing() -> bool:
                page = await (await http.get(f"{api}/v1/deliveries?status=failed")).json()
                return bool(page["items"])

            await wait_until(failing, 20, "a failing delivery")
            assert first.stop() == 0  # SIGTERM: a clean stop
            log = (tmp_path / "first.log").read_text()
            assert "embedded Redis at" in log and "set redis_url for production" in log

            receiver.scripts["down"] = []  # the receiver is back
            second.start()
            await wait_for_api(http, api, "/readyz")
            watches = (await (await http.get(f"{api}/v1/watches")).json())["items"]
            by_job = {w["job_id"]: w for w in watches}
            assert by_job["long"]["state"] == "watching" and by_job["short"]["state"] == "terminal"
            subs = (await (await http.get(f"{api}/v1/subscriptions")).json())["items"]
            assert [s["id"] for s in subs] == [sub["id"]]

            async def delivered() -> bool:
                page = await (await http.get(f"{api}/v1/deliveries?status=succeeded")).json()
                return bool(page["items"])

            await wait_until(delivered, 20, "the kept delivery to arrive")
            attempts = receiver.for_path("down")
            assert len({a.webhook_id for a in attempts}) == 1
            assert attempts[-1].verified and attempts[-1].body["data"]["job_id"] == "short"
            assert second.stop() == 0
    finally:
        first.kill()
        second.kill()
        await receiver.close()
        await server.close()
