"""import.progress over real sockets: a subscriber that asks for it gets ordered
progress events and then the terminal one; one that does not, only the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import running_bridge, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

SETTINGS = """
[delivery]
allow_private_targets = true
retry_schedule = [0.3, 0.3]
"""


def fast_progress(text: str) -> str:
    return text.replace(
        "tick = 0.05", "tick = 0.05\nprogress_step = 0.2\nprogress_min_interval = 0"
    )


async def test_progress_events_come_in_order_and_before_the_end(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> None:
    """A Talkdesk import that queues, then works through its records: the progress
    subscriber gets signed import.progress events with rising sequence numbers and
    counts (a status change among them), then import.completed last; the import.*
    subscriber gets import.completed only."""
    async with running_bridge(
        tmp_path, redis_server.url, prefix, extra=SETTINGS, edit=fast_progress
    ) as run:
        await run.subscribe("p", event_types=["import.progress", "import.*"])
        await run.subscribe("plain", event_types=["import.*"])
        run.sim.add_job(JobSpec(provider="talkdesk", id="prog", duration=3, total=1000))
        resp = await run.http.post(f"{run.api}/v1/watches", json={"source": "td", "job_id": "prog"})
        assert resp.status == 201

        async def ended() -> bool:
            return any(r.body["type"] == "import.completed" for r in run.receiver.for_path("p"))

        await wait_until(ended, 30, "the end of the job")
        got = run.receiver.for_path("p")
        types = [r.body["type"] for r in got]
        assert types[-1] == "import.completed" and types.count("import.completed") == 1
        progress = [r.body["data"] for r in got if r.body["type"] == "import.progress"]
        assert len(progress) >= 2, types
        seqs = [p["sequence"] for p in progress]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        done = [(p["counts"]["succeeded"] or 0) for p in progress]
        assert done == sorted(done)
        assert any(p["previous_status"] == "QUEUED" for p in progress)  # the status change
        assert all(r.verified for r in got)

        async def plain_told() -> bool:  # the other subscriber's delivery, in its own time
            return bool(run.receiver.for_path("plain"))

        await wait_until(plain_told, 30, "the plain subscriber's event")
        plain = [r.body["type"] for r in run.receiver.for_path("plain")]
        assert plain == ["import.completed"]
