"""FullStory's failed items on import.failed (errors_sample = true), over real sockets:
the bridge waits through the errors endpoint's 202, then attaches a bounded first page."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.providers.fullstory import SAMPLE_ITEMS
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


async def test_a_failed_job_carries_its_first_errors(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> None:
    """A FAILED job with 150 failed items: its one event carries 20 of them, the total
    and `truncated`, after the endpoint stopped answering 202; a completed job's event
    has no sample."""
    sim, server, receiver = await start_sim_and_receiver()
    sim.state.errors_delay = 1.0
    cfg = write_config(
        tmp_path / "bridge.toml", server, redis_url=redis_server.url, prefix=prefix,
        extra=DELIVERY,
    )  # fmt: skip
    text = cfg.read_text().replace(
        'api_key = "sim-fullstory-key"', 'api_key = "sim-fullstory-key"\nerrors_sample = true'
    )
    cfg.write_text(text)
    bridge = Bridge(load_settings(cfg), redis_url=redis_server.url)
    await bridge.start()
    http = aiohttp.ClientSession(headers=auth())
    api = f"http://127.0.0.1:{bridge.api_port}"
    try:
        resp = await http.post(f"{api}/v1/subscriptions", json={"url": receiver.url("e")})
        receiver.secrets["e"] = (await resp.json())["secret"]
        sim.add_job(JobSpec(provider="fullstory", id="bad", duration=0.3,
                            final_status="FAILED", total=200, failed=150))  # fmt: skip
        sim.add_job(JobSpec(provider="fullstory", id="good", duration=0.3))
        for job in ("bad", "good"):
            await http.post(f"{api}/v1/watches", json={"source": "fs", "job_id": job})

        async def both() -> bool:
            return len(receiver.for_path("e")) >= 2

        await wait_until(both, 30, "two events")
        events = {r.body["data"]["job_id"]: r.body for r in receiver.for_path("e")}
        assert len(receiver.for_path("e")) == 2
        sample = events["bad"]["data"]["errors_sample"]
        assert events["bad"]["type"] == "import.failed"
        assert len(sample["items"]) == SAMPLE_ITEMS and sample["total"] == 150
        assert sample["truncated"] is True and sample["items"][0]["code"] == "invalid_field"
        assert "errors_sample" not in events["good"]["data"]
        asked = [r for r in sim.state.requests if r.path.endswith("/bad/errors")]
        assert [r.status for r in asked][-1] == 200 and 202 in [r.status for r in asked]
    finally:
        await http.close()
        await bridge.stop(grace_s=1)
        await receiver.close()
        await server.close()
