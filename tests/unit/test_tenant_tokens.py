"""Tokens scoped to tenants: made with a config file's token, shown once, kept as a
hash; a scoped token sees and changes only its sources' watches, events, deliveries
and subscriptions, and everything else is a 404 (or left out of a list)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.api.server import ApiContext, build_api
from bridge.clock import FakeClock
from bridge.metrics import Metrics
from bridge.model import Attempt, Delivery, DeliveryStatus, Event
from bridge.sealing import Sealer, new_key, parse_key
from bridge.store.deliveries import DeliveryStore
from bridge.store.redis import RedisStore
from tests.unit.helpers import AUTH, TOKEN

SOURCES = {"acme-1": ("users",), "acme-2": ("users",), "globex-1": ("users",)}


@pytest.fixture
async def tenants(prefix: str) -> AsyncIterator[tuple[TestClient, RedisStore]]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = RedisStore(redis, prefix, sealer=Sealer([parse_key(new_key())]))
    ctx = ApiContext(store=store, clock=FakeClock(), metrics=Metrics(), source_kinds=SOURCES,
                     tokens=(TOKEN,), max_body_bytes=4096, deliveries=DeliveryStore(store),
                     allow_private_targets=True)  # fmt: skip
    client = TestClient(TestServer(build_api(ctx)))
    await client.start_server()
    yield client, store
    await client.close()
    await redis.aclose()


async def make_token(
    client: TestClient, role: str = "admin", sources: Any = None
) -> dict[str, Any]:
    body = {"role": role, "sources": sources or ["acme-*"], "description": "acme's platform"}
    resp = await client.post("/v1/tokens", headers=AUTH, json=body)
    assert resp.status == 201, await resp.text()
    made: dict[str, Any] = await resp.json()
    return made


def bearer(made: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {made['token']}"}


async def test_a_token_is_shown_once_kept_as_a_hash_and_revoked_at_once(tenants) -> None:  # type: ignore[no-untyped-def]
    client, store = tenants
    made = await make_token(client)
    assert made["token"].startswith("bt_") and made["sources"] == ["acme-*"]
    listed = await (await client.get("/v1/tokens", headers=AUTH)).json()
    assert [t["id"] for t in listed["items"]] == [made["id"]] and "token" not in listed["items"][0]
    held = [str(await store.client.get(k)) for k in await store.client.keys("*api_token:*")]
    assert held and not any(made["token"] in v for v in held)
    assert not any(made["token"] in k for k in await store.client.keys("*"))
    assert (await client.get("/v1/watches", headers=bearer(made))).status == 200
    assert (await client.delete(f"/v1/tokens/{made['id']}", headers=AUTH)).status == 204
    assert (await client.get("/v1/watches", headers=bearer(made))).status == 401
    assert (await client.delete(f"/v1/tokens/{made['id']}", headers=AUTH)).status == 404


async def test_only_the_config_files_tokens_manage_tokens_and_sources(tenants) -> None:  # type: ignore[no-untyped-def]
    client, _ = tenants
    scoped = bearer(await make_token(client))
    for method, path in (("GET", "/v1/tokens"), ("POST", "/v1/tokens"),
                         ("DELETE", "/v1/tokens/tok_x"), ("POST", "/v1/sources"),
                         ("PATCH", "/v1/sources/acme-1"), ("DELETE", "/v1/sources/acme-1")):  # fmt: skip
        resp = await client.request(method, path, headers=scoped, json={})
        assert resp.status == 403, (method, path)
    bad = await client.post("/v1/tokens", headers=AUTH, json={"role": "admin", "sources": ["a b"]})
    assert bad.status == 422


async def test_a_scoped_token_sees_only_its_tenant(tenants) -> None:  # type: ignore[no-untyped-def]
    client, store = tenants
    scoped = bearer(await make_token(client))
    ids = {}
    for source in ("acme-1", "globex-1"):
        resp = await client.post(
            "/v1/watches", headers=AUTH, json={"source": source, "job_id": "j"}
        )
        ids[source] = (await resp.json())["id"]
    # watches
    assert (await client.get(f"/v1/watches/{ids['globex-1']}", headers=scoped)).status == 404
    assert (await client.get(f"/v1/watches/{ids['globex-1']}?wait=0", headers=scoped)).status == 404
    assert (await client.delete(f"/v1/watches/{ids['globex-1']}", headers=scoped)).status == 404
    assert (await client.get(f"/v1/watches/{ids['acme-1']}", headers=scoped)).status == 200
    listed = await (await client.get("/v1/watches", headers=scoped)).json()
    assert [w["source"] for w in listed["items"]] == ["acme-1"]
    by_job = await client.get("/v1/watches?source=globex-1&job_id=j", headers=scoped)
    assert by_job.status == 422  # as for a source that does not exist
    refused = await client.post("/v1/watches", headers=scoped,
                                json={"source": "globex-1", "job_id": "k"})  # fmt: skip
    text = await refused.text()
    assert refused.status == 422 and "globex" not in text.replace("'globex-1'", "")
    batch = await client.post("/v1/watches/batch", headers=scoped, json={"items": [
        {"source": "acme-2", "job_id": "b"}, {"source": "globex-1", "job_id": "b"}]})  # fmt: skip
    answers = (await batch.json())["items"]
    assert answers[0]["status"] == 201 and answers[1]["status"] == 422
    # events, the feed and replays
    events = [Event(f"evt_{s}", "import.completed", "2027-01-01T00:00:00Z", ids[s], {"source": s})
              for s in ("acme-1", "globex-1")]  # fmt: skip
    await DeliveryStore(store).emit_many(events, 1_800_000_000.0, 3600)
    listed = await (await client.get("/v1/events", headers=scoped)).json()
    assert [e["id"] for e in listed["items"]] == ["evt_acme-1"]
    feed = await (await client.get("/v1/events?after=0-0", headers=scoped)).json()
    assert [e["id"] for e in feed["items"]] == ["evt_acme-1"] and feed["next_cursor"] != "0-0"
    assert (await client.get("/v1/events/evt_globex-1", headers=scoped)).status == 404
    assert (await client.post("/v1/events/evt_globex-1/replay", headers=scoped)).status == 404
    # subscriptions and deliveries
    theirs = await (await client.post("/v1/subscriptions", headers=AUTH, json={
        "url": "http://127.0.0.1:9/g", "sources": ["globex-1"]})).json()  # fmt: skip
    everyone = await (await client.post("/v1/subscriptions", headers=AUTH, json={
        "url": "http://127.0.0.1:9/all"})).json()  # fmt: skip
    for sub in (theirs, everyone):
        assert (await client.get(f"/v1/subscriptions/{sub['id']}", headers=scoped)).status == 404
        assert (await client.delete(f"/v1/subscriptions/{sub['id']}", headers=scoped)).status == 404
    cannot = await client.post("/v1/subscriptions", headers=scoped,
                               json={"url": "http://127.0.0.1:9/a", "sources": ["globex-*"]})  # fmt: skip
    assert cannot.status == 422
    mine = await client.post(
        "/v1/subscriptions", headers=scoped, json={"url": "http://127.0.0.1:9/a"}
    )
    mine_sub = await mine.json()
    assert mine.status == 201 and mine_sub["sources"] == ["acme-*"]
    listed = await (await client.get("/v1/subscriptions", headers=scoped)).json()
    assert [s["id"] for s in listed["items"]] == [mine_sub["id"]]
    dead = Delivery(id="dlv_g", event_id="evt_globex-1", subscription_id=theirs["id"],
                    status=DeliveryStatus.DEAD, created_at=1.0, detected_at=1.0,
                    attempts=(Attempt(2.0, 500, 0.1),))  # fmt: skip
    await DeliveryStore(store).add_deliveries([dead], 1.0)
    assert (await client.get("/v1/deliveries/dlv_g", headers=scoped)).status == 404
    assert (await client.post("/v1/deliveries/dlv_g/retry", headers=scoped)).status == 404
    assert (await (await client.get("/v1/deliveries", headers=scoped)).json())["items"] == []
    assert (await client.get("/v1/deliveries/dlv_g", headers=AUTH)).status == 200
    status = await (await client.get("/v1/status", headers=scoped)).json()
    assert set(status["sources"]) == {"acme-1", "acme-2"} and "watches" not in status


async def test_a_scoped_subscription_gets_only_its_tenants_events() -> None:
    from bridge.model import Subscription

    sub = Subscription(id="s", url="https://h.example/x", secrets=(), sources=("acme-*",))
    assert sub.matches("import.completed", "acme-7")
    assert not sub.matches("import.completed", "globex-1")
    assert not sub.matches("ping", None)
    exact = Subscription(id="e", url="https://h.example/x", secrets=(), sources=("acme-1",))
    assert exact.matches("import.completed", "acme-1") and not exact.matches(
        "import.completed", "acme-10"
    )


async def test_a_scoped_read_token_reads_only_its_events(tenants) -> None:  # type: ignore[no-untyped-def]
    client, _ = tenants
    reader = bearer(await make_token(client, role="read"))
    assert (await client.get("/v1/events", headers=reader)).status == 200
    assert (await client.get("/v1/watches", headers=reader)).status == 403


async def test_the_console_signs_a_tenant_in_and_shows_only_its_sources(tenants) -> None:  # type: ignore[no-untyped-def]
    import re

    client, _ = tenants
    made = await make_token(client)
    for source in ("acme-1", "globex-1"):
        await client.post("/v1/watches", headers=AUTH, json={"source": source, "job_id": "c"})
    resp = await client.post("/ui/login", data={"token": made["token"]}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui"
    overview = await (await client.get("/ui")).text()
    assert "acme-1" in overview and "globex" not in overview and "Queues" not in overview
    watches = await (await client.get("/ui/watches")).text()
    assert "acme-1" in watches and "globex" not in watches
    sources = await (await client.get("/ui/sources")).text()
    assert "Define a source" not in sources and "globex" not in sources
    csrf = re.search(r'name="csrf" value="([^"]+)"', watches).group(1)  # type: ignore[union-attr]
    body = {"csrf": csrf, "name": "x", "provider": "fullstory", "keys": '{"api_key": "k"}'}
    refused = await client.post("/ui/sources", data=body)
    assert refused.status == 403
    assert (await client.delete(f"/v1/tokens/{made['id']}", headers=AUTH)).status == 204
    after = await client.get("/ui", allow_redirects=False)
    assert after.status == 303  # the token revoked: the session is over
    read = await make_token(client, role="read")
    denied = await client.post("/ui/login", data={"token": read["token"]}, allow_redirects=False)
    assert "failed" in denied.headers["Location"]


@pytest.mark.parametrize(
    ("scope", "entry"),
    [
        ("t?-*", "t*-*"),
        ("*-eu-*", "*[-eu-]*"),
        ("acme-?", "acme-*"),
        ("acme-*", "acme*"),
        ("acme-*", "*"),
    ],
)
async def test_a_scoped_subscription_is_never_wider_than_its_token(
    tenants,
    scope: str,
    entry: str,  # type: ignore[no-untyped-def]
) -> None:
    client, _ = tenants
    scoped = bearer(await make_token(client, sources=[scope]))
    body = {"url": "http://127.0.0.1:9/a", "sources": [entry]}
    assert (await client.post("/v1/subscriptions", headers=scoped, json=body)).status == 422
    own = await client.post("/v1/subscriptions", headers=scoped,
                            json={"url": "http://127.0.0.1:9/a", "sources": [scope]})  # fmt: skip
    assert own.status == 201


async def test_nothing_of_another_tenant_leaks_through_cursors_lookups_or_history(tenants) -> None:  # type: ignore[no-untyped-def]
    """A scoped token's cursor is sealed (it may point past another tenant's watch); a
    job lookup on another's source answers as for one that does not exist; a delivery
    of another tenant's event stays hidden when its subscription is later confined to
    this tenant's sources; the config file's subscriptions are the operator's."""
    import base64

    client, store = tenants
    scoped = bearer(await make_token(client))
    for i in range(3):
        for source in ("acme-1", "globex-1"):
            await client.post(
                "/v1/watches", headers=AUTH, json={"source": source, "job_id": f"p{i}"}
            )
    page = await (await client.get("/v1/watches?limit=1", headers=scoped)).json()
    cursor = page["next_cursor"]
    assert cursor.startswith("sealed:1:") and "w_" not in cursor
    # not ids in base64: a sealed value (its ':' is no base64)
    assert not any(c in cursor.split(":", 3)[3] for c in ":")
    assert base64.urlsafe_b64decode(cursor.split(":", 3)[3] + "==")[:2] != b"18"
    seen = [page["items"][0]["job_id"]]
    while cursor:
        page = await (await client.get("/v1/watches", headers=scoped,
                                       params={"limit": "1", "cursor": cursor})).json()  # fmt: skip
        seen += [w["job_id"] for w in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == ["p0", "p1", "p2"]
    forged = await client.get("/v1/watches", headers=scoped, params={"cursor": "sealed:1:x:y"})
    assert forged.status == 400
    theirs = await client.get("/v1/watches?source=globex-1&job_id=p0", headers=scoped)
    nowhere = await client.get("/v1/watches?source=nosuch-9&job_id=p0", headers=scoped)
    assert theirs.status == nowhere.status == 422
    everyone = await (await client.post("/v1/subscriptions", headers=AUTH,
                                        json={"url": "http://127.0.0.1:9/all"})).json()  # fmt: skip
    event = Event(
        "evt_g", "import.completed", "2027-01-01T00:00:00Z", "w_g", {"source": "globex-1"}
    )
    await DeliveryStore(store).emit_many([event], 1_800_000_000.0, 3600)
    dead = Delivery(id="dlv_h", event_id="evt_g", subscription_id=everyone["id"],
                    status=DeliveryStatus.DEAD, created_at=1.0, detected_at=1.0)  # fmt: skip
    await DeliveryStore(store).add_deliveries([dead], 1.0)
    patched = await client.patch(f"/v1/subscriptions/{everyone['id']}", headers=AUTH,
                                 json={"sources": ["acme-1"]})  # fmt: skip
    assert patched.status == 200
    assert (await client.get(f"/v1/subscriptions/{everyone['id']}", headers=scoped)).status == 200
    assert (await client.get("/v1/deliveries/dlv_h", headers=scoped)).status == 404
    assert (await (await client.get("/v1/deliveries", headers=scoped)).json())["items"] == []


async def test_a_revoked_token_ends_its_stream(tenants) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    client, _ = tenants
    made = await make_token(client)
    async with client.get("/v1/events/stream", headers=bearer(made)) as stream:
        assert stream.status == 200
        assert (await client.delete(f"/v1/tokens/{made['id']}", headers=AUTH)).status == 204
        await asyncio.wait_for(stream.content.read(), 10)  # the end of the stream
