"""Simulator → bridge → webhook receivers that verify every signature (standardwebhooks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec, Simulator
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import auth, start_sim_and_receiver, subscribe, wait_until, write_config
from tests.e2e.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

DELIVERY = """
[delivery]
allow_private_targets = true
retry_schedule = [0.3, 0.3, 0.3, 0.3]
timeout = 2
lease_margin = 1
"""


class Env:
    def __init__(self, sim: Simulator, receiver: Receiver, bridge: Bridge, api: str) -> None:
        self.sim, self.receiver, self.bridge, self.api = sim, receiver, bridge, api
        self.http = aiohttp.ClientSession(headers=auth())

    async def subscribe(self, path: str, **fields: Any) -> dict[str, Any]:
        return await subscribe(self.http, self.api, self.receiver, path, **fields)

    async def watch(self, spec: JobSpec) -> str:
        self.sim.add_job(spec)
        src = "fs" if spec.provider == "fullstory" else "td"
        resp = await self.http.post(
            f"{self.api}/v1/watches", json={"source": src, "kind": spec.kind, "job_id": spec.id}
        )
        return str((await resp.json())["id"])

    async def get(self, path: str) -> Any:
        return await (await self.http.get(f"{self.api}{path}")).json()


@pytest.fixture
async def env(tmp_path: Path, redis_server: EmbeddedRedis, prefix: str) -> AsyncIterator[Env]:
    sim, server, receiver = await start_sim_and_receiver()
    cfg = write_config(
        tmp_path / "bridge.toml", server, redis_url=redis_server.url, prefix=prefix, extra=DELIVERY
    )
    bridge = Bridge(load_settings(cfg), redis_url=redis_server.url)
    await bridge.start()
    e = Env(sim, receiver, bridge, f"http://127.0.0.1:{bridge.api_port}")
    yield e
    await e.http.close()
    await bridge.stop(grace_s=1)
    await receiver.close()
    await server.close()


async def test_every_subscriber_gets_each_event_once(env: Env) -> None:
    """Matching subscribers get one verified event per job; a failed-only filter gets only failures."""
    await env.subscribe("all")
    await env.subscribe("failed", event_types=["import.failed"])
    await env.subscribe("slack", format="slack", sources=["td"])
    jobs = [
        JobSpec(provider="fullstory", id="ok1", duration=0.3),
        JobSpec(provider="fullstory", id="bad1", duration=0.4, final_status="FAILED", failed=2),
        JobSpec(provider="talkdesk", id="td1", duration=0.3, final_status="FAILED"),
    ]
    for spec in jobs:
        await env.watch(spec)

    async def delivered() -> bool:
        return (
            len(env.receiver.for_path("all")) >= 3
            and len(env.receiver.for_path("failed")) >= 2
            and len(env.receiver.for_path("slack")) >= 1
        )

    await wait_until(delivered, 20, "deliveries")
    everything = env.receiver.for_path("all")
    assert all(r.verified for r in everything)
    assert sorted(r.body["data"]["job_id"] for r in everything) == ["bad1", "ok1", "td1"]
    assert len({r.webhook_id for r in everything}) == 3
    for r in everything:
        event = await env.get(f"/v1/events/{r.webhook_id}")
        assert event["type"] == r.body["type"]
    failed = env.receiver.for_path("failed")
    assert {r.body["type"] for r in failed} == {"import.failed"} and all(r.verified for r in failed)
    [slack] = env.receiver.for_path("slack")
    assert "td1" in slack.body["text"] and "import.failed" in slack.body["text"] and slack.verified


async def test_retries_honour_retry_after(env: Env) -> None:
    """500, 500, 429 (Retry-After: 1), 200: delivered on the 4th attempt, same webhook-id,
    freshly signed each time, and not before the Retry-After."""
    env.receiver.scripts["flaky"] = [(500, {}), (500, {}), (429, {"Retry-After": "1"}), (200, {})]
    sub = await env.subscribe("flaky")
    await env.watch(JobSpec(provider="fullstory", id="r1", duration=0.2))

    async def done() -> bool:
        return len(env.receiver.for_path("flaky")) >= 4

    await wait_until(done, 20, "four attempts")
    attempts = env.receiver.for_path("flaky")
    assert len(attempts) == 4 and all(a.verified for a in attempts)
    assert len({a.webhook_id for a in attempts}) == 1
    assert attempts[3].t - attempts[2].t >= 1.0
    assert attempts[3].timestamp >= attempts[2].timestamp + 1

    async def recorded() -> bool:  # the receiver has answered; the bridge records it next
        items = (await env.get(f"/v1/deliveries?subscription_id={sub['id']}"))["items"]
        return bool(items and items[0]["status"] == "succeeded")

    await wait_until(recorded, 10, "the success to be recorded")
    [delivery] = (await env.get(f"/v1/deliveries?subscription_id={sub['id']}"))["items"]
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 429, 200]


async def test_gone_disables_and_keeps_events(env: Env) -> None:
    """410 disables the subscription after one attempt; its events are kept and resume on enable."""
    env.receiver.scripts["gone"] = [(410, {})]
    sub = await env.subscribe("gone")
    watcher = await env.subscribe("watcher", event_types=["subscription.disabled"])
    await env.watch(JobSpec(provider="fullstory", id="g1", duration=0.2))

    async def disabled() -> bool:
        view = await env.get(f"/v1/subscriptions/{sub['id']}")
        return view["enabled"] is False

    await wait_until(disabled, 20, "the subscription to be disabled")
    await env.watch(JobSpec(provider="fullstory", id="g2", duration=0.2))

    async def kept() -> bool:
        view = await env.get(f"/v1/subscriptions/{sub['id']}")
        return bool(view["parked_deliveries"] == 2)

    await wait_until(kept, 20, "both events to be kept")
    assert len(env.receiver.for_path("gone")) == 1
    listed = (await env.get(f"/v1/deliveries?subscription_id={sub['id']}"))["items"]
    assert len(listed) == 2 and all(d["status"] in ("pending", "failed") for d in listed)
    assert all(d["parked"] and d["next_attempt_at"] is None for d in listed)  # none is due
    one = await env.get(f"/v1/deliveries/{listed[0]['id']}")
    assert one["parked"] is True and one["next_attempt_at"] is None

    async def told() -> bool:
        return any(
            r.body["type"] == "subscription.disabled" for r in env.receiver.for_path("watcher")
        )

    await wait_until(told, 20, "subscription.disabled")
    assert watcher["id"] != sub["id"]
    resp = await env.http.patch(f"{env.api}/v1/subscriptions/{sub['id']}", json={"enabled": True})
    assert resp.status == 200

    async def resumed() -> bool:
        return len(env.receiver.for_path("gone")) >= 3

    await wait_until(resumed, 20, "the kept events to be delivered")
    assert {r.body["data"]["job_id"] for r in env.receiver.for_path("gone")} == {"g1", "g2"}


async def test_hanging_receiver_does_not_delay_others(env: Env) -> None:
    """While one receiver holds its requests open, another gets all its events."""
    import asyncio

    env.receiver.hang["stuck"] = asyncio.Event()
    await env.subscribe("stuck")
    await env.subscribe("fine")
    for i in range(5):
        await env.watch(JobSpec(provider="fullstory", id=f"h{i}", duration=0.2))

    async def fine_done() -> bool:
        return len(env.receiver.for_path("fine")) >= 5

    await wait_until(fine_done, 20, "the healthy receiver")
    assert env.receiver.for_path("stuck")  # its requests are out, still unanswered
    assert not env.receiver.hang["stuck"].is_set()


async def test_ping_replay_rotation_and_secrets(env: Env) -> None:
    """A ping arrives signed; a replay repeats the webhook-id; after a rotation both secrets sign."""
    sub = await env.subscribe("p")
    listed = await env.get("/v1/subscriptions")
    assert sub["secret"] not in str(listed) and "secret" not in listed["items"][0]
    resp = await env.http.post(f"{env.api}/v1/subscriptions/{sub['id']}/test")
    assert resp.status == 202
    ping_id = (await resp.json())["event_id"]

    async def pinged() -> bool:
        return len(env.receiver.for_path("p")) >= 1

    await wait_until(pinged, 10, "the ping")
    [ping] = env.receiver.for_path("p")
    assert ping.verified and ping.webhook_id == ping_id and ping.body["type"] == "ping"

    old_secret = sub["secret"]
    rotated = await (
        await env.http.post(f"{env.api}/v1/subscriptions/{sub['id']}/rotate-secret")
    ).json()
    await env.watch(JobSpec(provider="fullstory", id="rp", duration=0.2))

    async def event() -> bool:
        return len(env.receiver.for_path("p")) >= 2

    await wait_until(event, 20, "the job event")
    delivered = env.receiver.for_path("p")[1]
    assert delivered.verified  # still the old secret in the receiver's hands
    env.receiver.secrets["p"] = rotated["secret"]
    resp = await env.http.post(f"{env.api}/v1/events/{delivered.webhook_id}/replay")
    assert resp.status == 202

    async def replayed() -> bool:
        return len(env.receiver.for_path("p")) >= 3

    await wait_until(replayed, 20, "the replay")
    again = env.receiver.for_path("p")[2]
    assert again.webhook_id == delivered.webhook_id and again.verified
    assert old_secret != rotated["secret"]


async def test_bad_subscription_requests(env: Env) -> None:
    """Bad URLs, secrets, patterns and headers are 422s naming the field."""
    cases = [
        ({"url": "ftp://x"}, "url"),
        ({"url": env.receiver.url("x"), "secret": "nope"}, "secret"),
        ({"url": env.receiver.url("x"), "event_types": ["Import!"]}, "event_types"),
        ({"url": env.receiver.url("x"), "headers": {"webhook-id": "x"}}, "headers"),
        ({"url": env.receiver.url("x"), "sources": ["nope"]}, "sources"),
        ({"url": env.receiver.url("x"), "format": "fax"}, "format"),
    ]
    for body, field in cases:
        resp = await env.http.post(f"{env.api}/v1/subscriptions", json=body)
        assert resp.status == 422, body
        err = await resp.json()
        assert any(f["name"].startswith(field) for f in err["fields"]), (body, err)


async def test_dead_letter_recover_retry_and_metrics(env: Env) -> None:
    """A receiver failing past the schedule dead-letters the delivery; retry and recover
    send it again (same webhook-id); /metrics counts every outcome."""
    sub = await env.subscribe("down")

    async def dead_one(job_id: str) -> dict[str, Any]:
        env.receiver.scripts["down"] = [(500, {})] * 5
        await env.watch(JobSpec(provider="fullstory", id=job_id, duration=0.2))

        async def dead() -> list[Any]:
            path = f"/v1/deliveries?status=dead&subscription_id={sub['id']}"
            return list((await env.get(path))["items"])

        await wait_until(dead, 20, "the delivery to be dead-lettered")
        [delivery] = await dead()
        assert [a["status"] for a in delivery["attempts"]] == [500] * 5  # 1 + 4 retries
        return delivery

    async def succeeds(delivery_id: str) -> None:
        async def check() -> bool:
            return bool((await env.get(f"/v1/deliveries/{delivery_id}"))["status"] == "succeeded")

        await wait_until(check, 20, "the delivery to succeed")

    first = await dead_one("d1")
    resp = await env.http.post(f"{env.api}/v1/deliveries/{first['id']}/retry")
    assert resp.status == 202
    await succeeds(first["id"])
    resp = await env.http.post(f"{env.api}/v1/deliveries/{first['id']}/retry")
    assert resp.status == 409 and (await resp.json())["code"] == "delivery_succeeded"

    second = await dead_one("d2")
    resp = await env.http.post(f"{env.api}/v1/subscriptions/{sub['id']}/recover?since=0")
    assert resp.status == 200 and (await resp.json())["requeued"] == 1
    await succeeds(second["id"])
    ids = [r.webhook_id for r in env.receiver.for_path("down")]
    assert len(ids) == 12 and len(set(ids)) == 2  # 6 attempts per event, one id each
    resp = await env.http.post(f"{env.api}/v1/subscriptions/{sub['id']}/recover?since=soon")
    assert resp.status == 400 and (await resp.json())["fields"][0]["name"] == "since"

    metrics = await (await env.http.get(f"{env.api}/metrics")).text()
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith("bridge_") and " " in line
    }
    assert samples['bridge_deliveries_total{outcome="dead"}'] == 2
    assert samples['bridge_deliveries_total{outcome="retry"}'] == 8
    assert samples['bridge_deliveries_total{outcome="succeeded"}'] == 2
    assert samples["bridge_deliveries_dead_total"] == 2
    assert samples['bridge_delivery_lag_seconds_count{kind="first"}'] == 2
    assert samples['bridge_delivery_lag_seconds_count{kind="replay"}'] == 0
    assert samples['bridge_delivery_lag_seconds_count{kind="ping"}'] == 0
    assert samples["bridge_delivery_attempt_duration_seconds_count"] == 12
    assert "bridge_delivery_queue_depth" in samples


async def test_wrong_upstream_key_is_a_source_event_not_unreadiness(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> None:
    """A wrong FullStory key: /readyz stays 200 while /v1/status and the metrics show the
    source unhealthy, and one signed source.unhealthy event reaches a subscriber of
    source.*; with the key right again, one source.recovered follows."""
    sim, server, receiver = await start_sim_and_receiver()
    cfg = write_config(
        tmp_path / "bridge.toml", server, redis_url=redis_server.url, prefix=prefix, extra=DELIVERY
    )
    cfg.write_text(cfg.read_text().replace('"sim-fullstory-key"', '"a-wrong-key-0000"'))
    bridge = Bridge(load_settings(cfg), redis_url=redis_server.url)
    await bridge.start()
    env = Env(sim, receiver, bridge, f"http://127.0.0.1:{bridge.api_port}")
    try:
        await env.subscribe("ops", event_types=["source.*"])
        await env.subscribe("jobs")  # import.* only: no source events
        await env.watch(JobSpec(provider="fullstory", id="fs-bad-key", duration=30))

        async def told(kind: str) -> bool:
            return any(r.body["type"] == kind for r in receiver.for_path("ops"))

        await wait_until(lambda: told("source.unhealthy"), 20, "source.unhealthy")
        ready = await env.http.get(f"{env.api}/readyz")
        assert ready.status == 200
        status = await env.get("/v1/status")
        assert status["sources"]["fs"]["healthy"] is False and status["sources"]["td"]["healthy"]
        metrics = await (await env.http.get(f"{env.api}/metrics")).text()
        assert 'bridge_source_healthy{source="fs"} 0.0' in metrics
        assert 'bridge_source_healthy{source="td"} 1.0' in metrics  # a series from the start
        sim.state.api_key = "a-wrong-key-0000"
        await wait_until(lambda: told("source.recovered"), 20, "source.recovered")
        got = receiver.for_path("ops")
        assert [r.body["type"] for r in got] == ["source.unhealthy", "source.recovered"]
        assert all(r.verified for r in got)
        assert got[0].body["data"] == {
            "source": "fs",
            "provider": "fullstory",
            "reason": got[0].body["data"]["reason"],
        }
        assert "a-wrong-key" not in str(got[0].body)
        assert receiver.for_path("jobs") == []
    finally:
        await env.http.close()
        await bridge.stop(grace_s=1)
        await receiver.close()
        await server.close()


async def test_ed25519_subscriptions_sign_v1a(env: Env) -> None:
    """A subscription asking for v1a gets a whsk_ secret (shown once) and a whpk_ public
    key (shown always); its webhooks carry v1a signatures that the spec's construction
    verifies with the public key (checked with `cryptography`); after a rotation both
    keys verify, and the old one only for the grace period."""
    from tests.unit.helpers import spec_verify

    resp = await env.http.post(
        f"{env.api}/v1/subscriptions", json={"url": env.receiver.url("ed"), "signature": "v1a"}
    )
    sub = await resp.json()
    assert resp.status == 201 and sub["secret"].startswith("whsk_")
    assert sub["signature"] == "v1a" and [k[:5] for k in sub["public_keys"]] == ["whpk_"]
    listed = await env.get("/v1/subscriptions")
    assert sub["secret"] not in str(listed) and sub["public_keys"][0] in str(listed)
    await env.http.post(f"{env.api}/v1/subscriptions/{sub['id']}/test")

    async def arrived(n: int) -> bool:
        return len(env.receiver.for_path("ed")) >= n

    await wait_until(lambda: arrived(1), 20, "the ping")
    first = env.receiver.for_path("ed")[0]
    signed = (first.webhook_id, first.timestamp, first.raw, first.headers["webhook-signature"])
    assert signed[3].startswith("v1a,") and spec_verify(sub["public_keys"][0], *signed)
    rotated = await (
        await env.http.post(f"{env.api}/v1/subscriptions/{sub['id']}/rotate-secret")
    ).json()
    assert rotated["secret"].startswith("whsk_") and rotated["public_key"].startswith("whpk_")
    await env.http.post(f"{env.api}/v1/subscriptions/{sub['id']}/test")
    await wait_until(lambda: arrived(2), 20, "the second ping")
    second = env.receiver.for_path("ed")[1]
    header = second.headers["webhook-signature"]
    assert len(header.split()) == 2
    for key in (rotated["public_key"], sub["public_keys"][0]):
        assert spec_verify(key, second.webhook_id, second.timestamp, second.raw, header)
    bad = await env.http.post(
        f"{env.api}/v1/subscriptions",
        json={"url": env.receiver.url("x"), "signature": "v1a", "secret": sub["secret"][:-4]},
    )
    assert bad.status == 422 and (await bad.json())["fields"][0]["name"] == "secret"
