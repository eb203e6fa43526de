"""The admin API over a real loopback socket, on fakeredis."""

from __future__ import annotations

import fakeredis
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.api.server import ApiContext, build_api
from bridge.clock import FakeClock
from bridge.metrics import Metrics
from bridge.store.deliveries import DeliveryStore
from bridge.store.redis import RedisStore
from tests.unit.helpers import AUTH, TOKEN


async def test_requires_bearer_token(api) -> None:  # type: ignore[no-untyped-def]
    """Everything under /v1 needs a configured token; health endpoints do not."""
    client, _, _ = api
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        resp = await client.get("/v1/watches", headers=headers)
        assert resp.status == 401
        body = await resp.json()
        assert body["code"] == "unauthorized" and body["fields"] == []
        assert "nope" not in await resp.text()
    assert (
        await client.get("/v1/watches", headers={"Authorization": "Bearer second-token"})
    ).status == 200
    assert (await client.get("/livez")).status == 200
    assert (await client.get("/healthz")).status == 200


async def test_create_is_idempotent(api) -> None:  # type: ignore[no-untyped-def]
    """201 with a new watch, then 200 with the same id for the same source+kind+job_id."""
    client, _, woken = api
    body = {"source": "fs", "kind": "users", "job_id": "abc="}
    first = await client.post("/v1/watches", json=body, headers=AUTH)
    assert first.status == 201
    created = await first.json()
    assert created["state"] == "watching" and created["polls"] == 0 and created["job_id"] == "abc="
    second = await client.post("/v1/watches", json=body, headers=AUTH)
    assert second.status == 200 and (await second.json())["id"] == created["id"]
    assert woken == [1]
    got = await client.get(f"/v1/watches/{created['id']}", headers=AUTH)
    view = await got.json()
    for key in (
        "id",
        "source",
        "kind",
        "job_id",
        "state",
        "status",
        "outcome",
        "counts",
        "polls",
        "last_polled_at",
        "next_poll_at",
        "terminal_at",
    ):
        assert key in view


async def test_default_kind_is_the_providers_first(api) -> None:  # type: ignore[no-untyped-def]
    """Without kind, FullStory watches users."""
    client, _, _ = api
    resp = await client.post("/v1/watches", json={"source": "fs", "job_id": "j"}, headers=AUTH)
    assert (await resp.json())["kind"] == "users"


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"source": "nope", "job_id": "j"}, 422, "unknown_source", "source"),
        ({"source": "td", "kind": "events", "job_id": "j"}, 422, "invalid_kind", "kind"),
        ({"source": "fs", "job_id": 5}, 422, "invalid_request", "job_id"),
        ({"source": "fs"}, 422, "invalid_request", "job_id"),
        ({"source": "fs", "job_id": "a/b"}, 422, "invalid_request", "job_id"),
        ({"source": "fs", "job_id": "j", "extra": 1}, 422, "invalid_request", "extra"),
        ([1, 2], 422, "invalid_request", "body"),
    ],
)
async def test_bad_bodies_get_clear_errors(api, body, status, code, field) -> None:  # type: ignore[no-untyped-def]
    """Wrong types, unknown sources and kinds are 422s naming the field."""
    client, _, _ = api
    resp = await client.post("/v1/watches", json=body, headers=AUTH)
    assert resp.status == status
    err = await resp.json()
    assert err["code"] == code
    assert (
        any(f["name"] == field or f["name"].startswith(field) for f in err["fields"])
        or field == "body"
    )


async def test_malformed_and_oversized_bodies(api) -> None:  # type: ignore[no-untyped-def]
    """Not JSON is 400, too large is 413, both in the one error shape."""
    client, _, _ = api
    resp = await client.post("/v1/watches", data=b"{not json", headers=AUTH)
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_json"
    resp = await client.post("/v1/watches", data=b"x" * 5000, headers=AUTH)
    assert resp.status == 413 and (await resp.json())["code"] == "payload_too_large"
    resp = await client.post("/v1/watches", data=b"", headers=AUTH)
    assert resp.status == 400


async def test_unknown_ids_and_params(api) -> None:  # type: ignore[no-untyped-def]
    """Unknown ids are 404; bad state, limit or cursor are 400, never 500."""
    client, _, _ = api
    assert (await client.get("/v1/watches/w_missing", headers=AUTH)).status == 404
    assert (await client.delete("/v1/watches/w_missing", headers=AUTH)).status == 404
    assert (await client.get("/v1/events/evt_missing", headers=AUTH)).status == 404
    for query in ("state=bogus", "limit=0", "limit=x", "cursor=%%%", "cursor=Zm9v"):
        resp = await client.get(f"/v1/watches?{query}", headers=AUTH)
        assert resp.status == 400, query
        assert (await resp.json())["fields"]
    resp = await client.put("/v1/watches", headers=AUTH)
    assert resp.status == 405 and (await resp.json())["code"] == "method_not_allowed"


async def test_list_pages_and_delete(api) -> None:  # type: ignore[no-untyped-def]
    """Listing pages through all watches; deleting one removes it."""
    client, _, _ = api
    ids = []
    for i in range(5):
        resp = await client.post(
            "/v1/watches", json={"source": "td", "job_id": f"j{i}"}, headers=AUTH
        )
        ids.append((await resp.json())["id"])
    seen, cursor = [], None
    while True:
        q = f"limit=2&cursor={cursor}" if cursor else "limit=2"
        page = await (await client.get(f"/v1/watches?{q}", headers=AUTH)).json()
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids)
    assert (await client.delete(f"/v1/watches/{ids[0]}", headers=AUTH)).status == 204
    assert (await client.get(f"/v1/watches/{ids[0]}", headers=AUTH)).status == 404
    page = await (await client.get("/v1/watches?source=td&state=watching", headers=AUTH)).json()
    assert len(page["items"]) == 4


async def test_readyz_ignores_upstream_credentials(api) -> None:  # type: ignore[no-untyped-def]
    """/readyz is about this process (Redis, its loops); a failing source shows in
    /v1/status instead, so one bad key does not take every replica out of service."""
    client, store, _ = api
    assert (await client.get("/readyz")).status == 200
    await store.sources.set_health("td", False, "401 invalid authorization", 0.0)
    assert (await client.get("/readyz")).status == 200
    status = await (await client.get("/v1/status", headers=AUTH)).json()
    assert status["sources"]["td"]["healthy"] is False


async def test_metrics_exposed(api) -> None:  # type: ignore[no-untyped-def]
    """/metrics serves Prometheus text."""
    client, _, _ = api
    text = await (await client.get("/metrics")).text()
    assert "bridge_polls_in_flight" in text


async def test_status_counts(api) -> None:  # type: ignore[no-untyped-def]
    """/v1/status counts watches, reports each source and the delivery queues."""
    client, store, _ = api
    for job in ("a", "b", "c"):
        await client.post("/v1/watches", json={"source": "fs", "job_id": job}, headers=AUTH)
    await store.sources.set_health("td", False, "401 invalid authorization", 0.0)
    await store.sources.pause("fs", 30)
    body = await (await client.get("/v1/status", headers=AUTH)).json()
    assert body["watches"] == {
        "total": 3,
        "watching": 3,
        "polling_now": 0,
        "waiting_for_budget": 0,
        "finished": 0,
    }
    assert body["sources"]["td"]["healthy"] is False
    assert body["sources"]["fs"]["healthy"] is True and body["sources"]["fs"]["paused_for_s"] > 0
    assert body["queues"]["deliveries_due"] == 0 and body["subscriptions"]["total"] == 0
    assert (await client.get("/v1/status")).status == 401


async def test_openapi_describes_every_route(api) -> None:  # type: ignore[no-untyped-def]
    """/openapi.json is public and lists exactly the app's routes (the console's HTML
    pages under /ui apart), with the request bodies' schemas taken from the validating
    models."""
    from bridge.api.models import WatchCreate

    client, _, _ = api
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    routes = {
        (r.method, r.resource.canonical)
        for r in client.server.app.router.routes()
        if r.method != "HEAD"
        and r.resource is not None
        and not r.resource.canonical.startswith("/ui")
    }
    assert documented == routes
    assert (
        doc["components"]["schemas"]["WatchCreate"]["properties"]
        == (WatchCreate.model_json_schema()["properties"])
    )
    body = doc["paths"]["/v1/watches"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/WatchCreate")


async def test_event_type_catalogue_and_patterns(api) -> None:  # type: ignore[no-untyped-def]
    """GET /v1/event-types lists each known type with a line; subscriptions and the event
    filter take only patterns that name something, and a typo gets a suggestion."""
    client, _, _ = api
    got = await (await client.get("/v1/event-types", headers=AUTH)).json()
    types = {item["type"]: item["description"] for item in got["items"]}
    assert {"import.completed", "source.unhealthy", "source.recovered", "ping"} <= set(types)
    assert all(types.values()) and "import.*" in got["patterns"]
    url = "https://hooks.example.com/x"
    for bad, hint in (("import.complete", "import.completed"), ("bogus.*", "import.*")):
        resp = await client.post(
            "/v1/subscriptions", headers=AUTH, json={"url": url, "event_types": [bad]}
        )
        body = await resp.json()
        assert resp.status == 422 and body["fields"][0]["name"] == "event_types", body
        assert hint in body["fields"][0]["description"], body
        assert not body["fields"][0]["description"].startswith("Value error"), body
    ok = await client.post(
        "/v1/subscriptions", headers=AUTH, json={"url": url, "event_types": ["source.*"]}
    )
    assert ok.status == 201
    bad_filter = await client.get("/v1/events?type=import.complete", headers=AUTH)
    assert bad_filter.status == 400 and "import.completed" in (await bad_filter.json())["message"]
    for pattern in ("import.*", "*", "import.completed"):
        resp = await client.get(f"/v1/events?type={pattern}", headers=AUTH)
        assert resp.status == 200


async def test_a_job_id_cannot_be_a_path_step(api) -> None:  # type: ignore[no-untyped-def]
    """ "." and ".." would walk up the job URL (another resource answers): refused, in
    every spelling a common server reads as one (Tomcat's path parameters, IIS's
    backslashes, percent escapes decoded twice, full-width dots, trailing dots)."""
    client, _, _ = api
    for job_id in (".", "..", "..;", "..;jsessionid=x", "..\\..\\admin", "a\\..",
                   "%2e%2e", "%252e%252e", "%25252e%25252e", "..%00", ".%00.", "..?", "..#x",
                   "\uff0e\uff0e", "...", ".. ", "x%2F..%2Fadmin"):  # fmt: skip
        resp = await client.post(
            "/v1/watches", headers=AUTH, json={"source": "fs", "job_id": job_id}
        )
        assert resp.status == 422 and (await resp.json())["fields"][0]["name"] == "job_id"
    for job_id in ("..a", "a..b", "v1.2.3", "a;b", "50%"):
        ok = await client.post("/v1/watches", headers=AUTH, json={"source": "fs", "job_id": job_id})
        assert ok.status == 201, job_id


async def test_watches_in_a_batch(api) -> None:  # type: ignore[no-untyped-def]
    """POST /v1/watches/batch answers each item on its own, in order: 201 new, 200 the
    same job again (in the batch or before), 422 a bad item with the error's shape;
    one bad item fails alone."""
    client, _, woken = api
    await client.post("/v1/watches", headers=AUTH, json={"source": "fs", "job_id": "before"})
    items = [
        {"source": "fs", "job_id": "a"},
        {"source": "fs", "job_id": "a"},
        {"source": "fs", "job_id": "before"},
        {"source": "nope", "job_id": "b"},
        {"source": "fs", "job_id": ".."},
        "not an object",
        {"source": "td", "job_id": "c", "kind": "users"},
    ]
    resp = await client.post("/v1/watches/batch", headers=AUTH, json={"items": items})
    assert resp.status == 200
    answers = (await resp.json())["items"]
    assert [a["status"] for a in answers] == [201, 200, 200, 422, 422, 422, 201]
    assert answers[0]["id"] == answers[1]["id"]
    assert answers[3]["error"]["code"] == "unknown_source"
    assert answers[4]["error"]["fields"][0]["name"] == "job_id"
    listed = await (await client.get("/v1/watches", headers=AUTH)).json()
    assert {w["job_id"] for w in listed["items"]} == {"before", "a", "c"}
    assert woken


async def test_a_batch_is_bounded(api) -> None:  # type: ignore[no-untyped-def]
    """No items, more than 1,000, or not {items: [...]}: a 422 naming `items`."""
    client, _, _ = api
    for body in ({"items": []}, {"items": [{"source": "fs", "job_id": "x"}] * 1001},
                 {"item": []}, [1, 2]):  # fmt: skip
        resp = await client.post("/v1/watches/batch", headers=AUTH, json=body)
        answer = await resp.json()
        assert resp.status in (413, 422) and answer["fields"][0]["name"] == "items", answer


async def test_subscriptions_sharing_a_millisecond_are_all_listed(api) -> None:  # type: ignore[no-untyped-def]
    """Pages of one: subscriptions created within the same millisecond, whose ids sort
    the other way from their exact times, are each listed once."""
    from bridge.model import Subscription

    client, store, _ = api
    deliveries = DeliveryStore(store)
    for sid, at in (("sub_z", 1_700_000_000.0001), ("sub_a", 1_700_000_000.0004)):
        await deliveries.save_subscription(
            Subscription(id=sid, url="https://h.example.com", secrets=(), created_at=at)
        )
    seen, cursor = [], None
    for _ in range(5):
        query = "?limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get("/v1/subscriptions" + query, headers=AUTH)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == ["sub_a", "sub_z"] and len(seen) == 2


async def test_a_watch_waiting_for_budget_says_so(api) -> None:  # type: ignore[no-untyped-def]
    """Due watches the source's limiter refused wait in its backlog: their view says
    poll_reason `rate_limited`, in the list and alone, or `paused` once a 429 pauses
    the source."""
    client, store, _ = api
    ids = []
    for job in ("a", "b", "c"):
        created = await client.post(
            "/v1/watches", headers=AUTH, json={"source": "fs", "job_id": job}
        )
        ids.append((await created.json())["id"])
    later = 1_800_000_100.0  # all three due
    claimed = await store.claim(later, 30, 10, {"fs": (0.001, 1)})  # one slot only
    assert len(claimed) == 1
    listed = await (await client.get("/v1/watches", headers=AUTH)).json()
    reasons = {w["id"]: w["poll_reason"] for w in listed["items"]}
    waiting = [i for i in ids if i != claimed[0].watch.id]
    assert [reasons[i] for i in waiting] == ["rate_limited", "rate_limited"]
    one = await (await client.get(f"/v1/watches/{waiting[0]}", headers=AUTH)).json()
    assert one["poll_reason"] == "rate_limited"
    await store.sources.pause("fs", 60)  # a 429 arrived: they wait for the pause now
    one = await (await client.get(f"/v1/watches/{waiting[0]}", headers=AUTH)).json()
    assert one["poll_reason"] == "paused"


async def test_a_body_sent_in_pieces_is_read_whole() -> None:
    """A JSON body that arrives in several network writes (a slow link, a proxy) is
    read to its end, not cut at the first piece: the stream hands out what has
    arrived, a piece at a time."""
    import json
    import types

    from bridge.api.error_shape import read_json

    body = json.dumps({"source": "fs", "job_id": "x" * 400}).encode()
    pieces = [body[:100], body[100:250], body[250:], b""]

    async def read(n: int) -> bytes:
        return pieces.pop(0)[:n]

    request = types.SimpleNamespace(content_length=None, content=types.SimpleNamespace(read=read))
    assert await read_json(request, 65536) == json.loads(body)  # type: ignore[arg-type]


async def test_one_token_cannot_take_every_waiting_place(api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Waiting feed clients are capped per process and, per token, at a quarter of
    that: a consumer holding its share gets 503, another token still gets a place."""
    from bridge.api import feed
    from bridge.api.auth import fingerprint

    monkeypatch.setattr(feed, "MAX_WAITING", 8)  # two places per token
    client, _, _ = api
    app = client.server.app
    mine = fingerprint(TOKEN)
    app[feed.WAITING][0] = 2  # two long polls of this token are waiting
    app[feed.WAITING_PER_TOKEN][mine] = 2
    third = await client.get("/v1/events?wait=1", headers=AUTH)
    assert third.status == 503 and (await third.json())["code"] == "too_many_waiting"
    other = {"Authorization": "Bearer second-token"}
    assert (await client.get("/v1/events?wait=0.1", headers=other)).status == 200
    assert app[feed.WAITING][0] == 2 and app[feed.WAITING_PER_TOKEN] == {mine: 2}


@pytest.mark.parametrize("path", ["/v1/events?wait=2", "/v1/events/stream"])
async def test_a_token_spelt_many_ways_holds_one_share_of_the_places(api, path) -> None:  # type: ignore[no-untyped-def]
    """The scheme in any case and any number of spaces are the same token: 200 long
    polls (or streams) of one token with headers all different get its share of the
    waiting places (50 of 200) and no more, and another token is still answered."""
    import asyncio

    from bridge.api import feed
    from tests.e2e.harness import wait_until

    client, _, _ = api
    app = client.server.app
    schemes = ("Bearer", "bEARER", "BEARER", "bearer")
    spellings = [f"{schemes[n % 4]}{' ' * (1 + n // 4)}{TOKEN}" for n in range(feed.MAX_WAITING)]
    assert len(set(spellings)) == 200
    share = feed.MAX_WAITING // 4
    answers: list[int] = []

    async def one(header: str) -> None:
        async with client.get(path, headers={"Authorization": header}) as resp:
            answers.append(resp.status)
            if resp.status == 200 and path.endswith("stream"):
                await resp.content.readany()  # holds its place until the server stops

    tasks = [asyncio.create_task(one(h)) for h in spellings]

    async def settled() -> bool:  # every request has its answer or its place
        return answers.count(503) + app[feed.WAITING][0] >= len(spellings)

    await wait_until(settled, 20, "every request answered or waiting", step_s=0.01)
    assert answers.count(503) == len(spellings) - share
    assert app[feed.WAITING][0] == share
    other = await client.get(
        "/v1/events?wait=0.1", headers={"Authorization": "Bearer second-token"}
    )
    assert other.status == 200
    app[feed.STOPPING].set()
    await asyncio.gather(*tasks)
    assert answers.count(200) == share


async def test_failed_bearer_attempts_are_braked_per_address(api) -> None:  # type: ignore[no-untyped-def]
    """Past MAX_FAILURES wrong tokens from one address within the window, that address
    gets 429 with Retry-After, a right token included; the window over, it may again."""
    from bridge.api.auth import BRAKE, MAX_FAILURES

    client, _, _ = api
    brake = client.server.app[BRAKE]
    now = [1000.0]
    brake.now = lambda: now[0]
    wrong = {"Authorization": "Bearer nope"}
    for _ in range(MAX_FAILURES):
        assert (await client.get("/v1/watches", headers=wrong)).status == 401
    held = await client.get("/v1/watches", headers=AUTH)
    assert held.status == 429 and int(held.headers["Retry-After"]) > 0
    assert (await held.json())["code"] == "too_many_failures"
    now[0] += brake.window_s
    assert (await client.get("/v1/watches", headers=AUTH)).status == 200


async def test_a_read_token_may_read_the_event_types(prefix: str) -> None:
    """The catalogue of event types is an event read (DESIGN §4), nothing more is."""
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = RedisStore(redis, prefix)
    ctx = ApiContext(store=store, clock=FakeClock(), metrics=Metrics(), source_kinds={},
                     tokens=(TOKEN,), max_body_bytes=1024, read_tokens=("reader",))  # fmt: skip
    async with TestClient(TestServer(build_api(ctx))) as client:
        reader = {"Authorization": "Bearer reader"}
        assert (await client.get("/v1/event-types", headers=reader)).status == 200
        assert (await client.get("/v1/status", headers=reader)).status == 403
    await redis.aclose()


async def test_answers_that_carry_secrets_are_never_cached(api) -> None:  # type: ignore[no-untyped-def]
    """A new subscription's secret, a rotated one and every other answer to a token are
    marked Cache-Control: no-store; health endpoints are not."""
    client, _, _ = api
    created = await client.post(
        "/v1/subscriptions", headers=AUTH, json={"url": "https://hooks.example.com/x"}
    )
    assert created.headers["Cache-Control"] == "no-store"
    sub_id = (await created.json())["id"]
    rotated = await client.post(f"/v1/subscriptions/{sub_id}/rotate-secret", headers=AUTH)
    assert rotated.status == 200 and rotated.headers["Cache-Control"] == "no-store"
    refused = await client.get("/v1/watches")
    assert refused.status == 401 and refused.headers["Cache-Control"] == "no-store"
    assert "Cache-Control" not in (await client.get("/livez")).headers


async def test_a_redis_that_refuses_writes_is_a_503_said_once(api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Redis full (OOM) under a registration: 503 in the error shape with Retry-After,
    no traceback, and the state logged once however many requests meet it."""
    from redis._parsers.base import BaseParser
    from structlog.testing import capture_logs

    client, store, _ = api

    async def full(*args: object, **kwargs: object) -> object:
        # as redis-py raises it: OutOfMemoryError, the "OOM" code cut off the message
        raise BaseParser.parse_error("OOM command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(store, "_register", full)  # the script under the store's edge
    with capture_logs() as logs:
        for _ in range(3):
            resp = await client.post(
                "/v1/watches", headers=AUTH, json={"source": "fs", "job_id": "j"}
            )
            body = await resp.json()
            assert resp.status == 503 and body["code"] == "unavailable" and body["fields"] == []
            assert "writes" in body["message"] and resp.headers["Retry-After"]
    assert [e["event"] for e in logs] == ["redis_refusing_writes"]


async def test_readiness_answers_while_redis_is_silent(api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A Redis that never answers: /readyz says 503 after its own short bound instead of
    waiting on the command's timeout."""
    import asyncio

    from bridge.api import probes

    client, store, _ = api
    monkeypatch.setattr(probes, "READY_WITHIN_S", 0.05)

    async def silent() -> bool:
        await asyncio.Event().wait()
        return True

    monkeypatch.setattr(store, "ping", silent)
    resp = await client.get("/readyz")
    assert resp.status == 503 and "TimeoutError" in (await resp.json())["checks"]["redis"]


async def test_requests_with_no_token_are_not_guesses(api) -> None:  # type: ignore[no-untyped-def]
    """A crawler sending no credentials gets 401 each time but never trips the brake
    for everyone else at its address."""
    from bridge.api.auth import MAX_FAILURES

    client, _, _ = api
    for _ in range(2 * MAX_FAILURES):
        assert (await client.get("/v1/watches")).status == 401
        assert (await client.get("/v1/watches", headers={"Authorization": "Basic x"})).status == 401
    assert (await client.get("/v1/watches", headers=AUTH)).status == 200


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a trusted proxy: ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # spoofed left part
        ("10.0.0.2", "not-an-ip", "10.0.0.2"),
        ("2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2::/64"),
    ],
)
def test_the_address_a_failure_counts_against(peer: str, forwarded: str | None,
                                              expected: str) -> None:  # fmt: skip
    """The peer, or through a trusted proxy the nearest address X-Forwarded-For names
    outside the proxies; IPv6 by its /64."""
    import ipaddress

    from bridge.api.auth import client_address

    proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_address(peer, forwarded, proxies) == expected


async def test_watches_are_found_by_their_job(api) -> None:  # type: ignore[no-untyped-def]
    """GET /v1/watches?source=&job_id= answers the watches of one upstream job, one a
    kind unless kind names one; state filters them; without source it is a 400; a job
    not watched is an empty list."""
    client, _, _ = api
    for kind in ("users", "events"):
        body = {"source": "fs", "kind": kind, "job_id": "imp-2"}
        await client.post("/v1/watches", json=body, headers=AUTH)
    await client.post("/v1/watches", json={"source": "fs", "job_id": "other"}, headers=AUTH)

    async def found(query: str) -> list[tuple[str, str]]:
        resp = await client.get(f"/v1/watches?{query}", headers=AUTH)
        assert resp.status == 200
        data = await resp.json()
        assert data["next_cursor"] is None
        return sorted((w["kind"], w["job_id"]) for w in data["items"])

    assert await found("source=fs&job_id=imp-2") == [("events", "imp-2"), ("users", "imp-2")]
    assert await found("source=fs&kind=events&job_id=imp-2") == [("events", "imp-2")]
    assert await found("source=fs&job_id=imp-2&state=terminal") == []
    assert await found("source=fs&job_id=never") == []
    assert await found("source=fs&kind=users") == [("users", "imp-2"), ("users", "other")]
    resp = await client.get("/v1/watches?job_id=imp-2", headers=AUTH)
    assert resp.status == 400 and (await resp.json())["fields"][0]["name"] == "source"
    empty = await client.get("/v1/watches?source=fs&job_id=", headers=AUTH)  # not a listing
    assert empty.status == 400 and (await empty.json())["fields"][0]["name"] == "job_id"
    typo = await client.get("/v1/watches?source=fz&job_id=imp-2", headers=AUTH)
    assert typo.status == 422 and (await typo.json())["code"] == "unknown_source"
    assert await found("source=gone&kind=users&job_id=imp-2") == []  # no longer configured


async def test_a_watch_long_poll_answers_when_its_job_ends(api) -> None:  # type: ignore[no-untyped-def]
    """GET /v1/watches/{id}?wait=S answers once the watch's state changes, not at the end
    of S; with nothing changing, after S as it is; a bad wait is a 400, an unknown watch
    a 404."""
    import asyncio
    from dataclasses import replace

    from bridge.events import outcome_event
    from bridge.model import Outcome, WatchState

    client, store, _ = api
    created = await client.post("/v1/watches", json={"source": "fs", "job_id": "lp"}, headers=AUTH)
    watch_id = (await created.json())["id"]
    quiet = await client.get(f"/v1/watches/{watch_id}?wait=0.3", headers=AUTH)
    assert quiet.status == 200 and (await quiet.json())["state"] == "watching"
    waiting = asyncio.create_task(client.get(f"/v1/watches/{watch_id}?wait=30", headers=AUTH))
    now = 1_800_000_000.0
    [claimed] = await store.claim(now, 30, 1)
    done = replace(claimed.watch, state=WatchState.TERMINAL, outcome=Outcome.COMPLETED)
    event = outcome_event(watch=done, provider="fullstory", outcome=Outcome.COMPLETED,
                          previous_status=None, detected_at=now, snapshot=None)  # fmt: skip
    assert await store.finish(claimed, done, event, 3600) == "terminal"
    answered = await asyncio.wait_for(waiting, 5)  # well before the 30 s it may wait
    body = await answered.json()
    assert body["state"] == "terminal" and body["outcome"] == "completed"
    ended = await client.get(f"/v1/watches/{watch_id}?wait=30", headers=AUTH)  # at once
    assert (await ended.json())["state"] == "terminal"
    bad = await client.get(f"/v1/watches/{watch_id}?wait=soon", headers=AUTH)
    assert bad.status == 400 and (await bad.json())["code"] == "invalid_wait"
    assert (await client.get("/v1/watches/w_nope?wait=1", headers=AUTH)).status == 404
