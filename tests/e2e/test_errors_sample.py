"""FullStory's failed items on import.failed (errors_sample = true), over real sockets:
the bridge waits through the errors endpoint's 202, then attaches a bounded first page."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.providers.fullstory import SAMPLE_ITEMS
from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import running_bridge, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

DELIVERY = """
[delivery]
allow_private_targets = true
retry_schedule = [0.3, 0.3]
"""


def with_sample(text: str) -> str:
    return text.replace(
        'api_key = "sim-fullstory-key"', 'api_key = "sim-fullstory-key"\nerrors_sample = true'
    )


async def test_a_failed_job_carries_its_first_errors(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> None:
    """A FAILED job with 150 failed items: its one event carries 20 of them, the total
    and `truncated`, after the endpoint stopped answering 202; a completed job's event
    has no sample."""
    async with running_bridge(
        tmp_path, redis_server.url, prefix, extra=DELIVERY, edit=with_sample
    ) as run:
        run.sim.state.errors_delay = 1.0
        await run.subscribe("e")
        run.sim.add_job(JobSpec(provider="fullstory", id="bad", duration=0.3,
                                final_status="FAILED", total=200, failed=150))  # fmt: skip
        run.sim.add_job(JobSpec(provider="fullstory", id="good", duration=0.3))
        for job in ("bad", "good"):
            await run.http.post(f"{run.api}/v1/watches", json={"source": "fs", "job_id": job})

        async def both() -> bool:
            return len(run.receiver.for_path("e")) >= 2

        await wait_until(both, 30, "two events")
        got = run.receiver.for_path("e")
        events = {r.body["data"]["job_id"]: r.body for r in got}
        assert len(got) == 2
        sample = events["bad"]["data"]["errors_sample"]
        assert events["bad"]["type"] == "import.failed"
        assert len(sample["items"]) == SAMPLE_ITEMS and sample["total"] == 150
        assert sample["truncated"] is True and sample["items"][0]["code"] == "invalid_field"
        assert events["bad"]["data"]["previous_status"] == "PROCESSING"
        assert "errors_sample" not in events["good"]["data"]
        asked = [r.status for r in run.sim.state.requests if r.path.endswith("/bad/errors")]
        assert asked[-1] == 200 and 202 in asked
