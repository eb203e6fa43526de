"""The generic provider end to end: each shipped example config (Salesforce Bulk API
2.0, GitHub Actions, HubSpot imports), pointed at a simulator route that answers in
that API's documented shape, reaches the right outcome with exactly one event."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import running_bridge, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

EXAMPLES = Path(__file__).parents[2] / "config" / "generic"
DELIVERY = """
[delivery]
allow_private_targets = true
retry_schedule = [0.3, 0.3]
"""


def example_at(name: str, sim_url: str) -> str:
    """The example's [sources.X] table with its vendor host swapped for the simulator's
    and the simulator's credentials filled in."""
    text = (EXAMPLES / name).read_text()
    text = re.sub(r"https://[^/\"]+", sim_url, text)
    text = text.replace(f"{sim_url}/services/oauth2/token", f"{sim_url}/oauth/token")
    text = text.replace('client_id = "CONNECTED-APP-CONSUMER-KEY"', 'client_id = "sim-client"')
    source = text.split("[sources.", 1)[1].split("]", 1)[0]
    vendor = {"sf": "salesforce", "gh": "github", "hs": "hubspot"}[source]
    secret = (
        'client_secret = "sim-secret"'
        if vendor == "salesforce"
        else (f'token = "sim-{vendor}-token"')
    )
    text = text.replace("rate_limit =", f"{secret}\nrate_limit =", 1)
    return text.replace("/OWNER/REPO/", "/acme/etl/")


async def test_each_example_reaches_its_outcome_once(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> None:
    """A finished, a failed and a canceled job per vendor: one event each, of the type
    the example's terminal map says, signed and verified; the Salesforce source gets
    its token by the client-credentials grant."""
    examples = ("salesforce-bulk-ingest.toml", "github-actions-run.toml", "hubspot-import.toml")

    def with_examples(text: str) -> str:
        url = text.split('base_url = "', 1)[1].split('"', 1)[0]
        return text + "\n" + "\n".join(example_at(name, url) for name in examples)

    async with running_bridge(
        tmp_path, redis_server.url, prefix, extra=DELIVERY, edit=with_examples
    ) as run:
        await run.subscribe("g")
        expected: dict[str, str] = {}
        for source, vendor in (("sf", "salesforce"), ("gh", "github"), ("hs", "hubspot")):
            for final, event in (
                ("COMPLETED", "import.completed"),
                ("FAILED", "import.failed"),
                ("CANCELED", "import.canceled"),
            ):
                job_id = f"{sum(map(ord, vendor + final))}{len(final)}"
                run.sim.add_job(
                    JobSpec(provider=vendor, id=job_id, duration=0.6, final_status=final, total=50)
                )
                resp = await run.http.post(
                    f"{run.api}/v1/watches", json={"source": source, "job_id": job_id}
                )
                assert resp.status == 201, await resp.text()
                expected[(await resp.json())["id"]] = event

        async def all_arrived() -> bool:
            return len(run.receiver.for_path("g")) >= len(expected)

        await wait_until(all_arrived, 30, "one event per job")
        got = run.receiver.for_path("g")
        assert all(r.verified for r in got)
        by_watch: dict[str, list[str]] = {}
        for r in got:
            by_watch.setdefault(r.body["data"]["watch_id"], []).append(r.body["type"])
        assert by_watch == {w: [t] for w, t in expected.items()}
        hubspot = next(r for r in got if r.body["data"]["source"] == "hs"
                       and r.body["type"] == "import.completed")  # fmt: skip
        assert hubspot.body["data"]["counts"]["total"] == 50
        assert hubspot.body["data"]["provider"] == "generic"
        assert run.sim.state.tokens_issued >= 1  # Salesforce's client-credentials token
