"""The console's sign-in, session and CSRF rules over a real socket (no browser)."""

from __future__ import annotations

from tests.unit.helpers import AUTH, TOKEN, csrf_of, sign_in


async def test_pages_need_a_session_and_a_wrong_token_gets_none(api) -> None:  # type: ignore[no-untyped-def]
    """Without a session every page sends you to sign in; a wrong (or read-only) token
    signs nobody in; a right one gives an HttpOnly, SameSite=Strict cookie only."""
    client, _, _ = api
    for path in ("/ui", "/ui/watches", "/ui/deliveries", "/ui/subscriptions"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/ui/login", path
    wrong = await client.post("/ui/login", data={"token": "not-a-token"}, allow_redirects=False)
    assert wrong.status == 303 and "failed" in wrong.headers["Location"]
    assert "bridge_session" not in wrong.cookies
    await sign_in(client)
    page = await client.get("/ui")
    text = await page.text()
    assert page.status == 200 and "Overview" in text and TOKEN not in text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


async def test_every_form_needs_its_csrf_token(api) -> None:  # type: ignore[no-untyped-def]
    """A post without the session's CSRF token, or with another one, is refused with a
    403 in the API's error shape, and changes nothing."""
    client, _, _ = api
    await sign_in(client)
    created = await client.post(
        "/v1/subscriptions", headers=AUTH, json={"url": "https://hooks.example.com/x"}
    )
    sub = await created.json()
    for data in ({}, {"csrf": "forged"}):
        resp = await client.post(f"/ui/subscriptions/{sub['id']}/disable", data=data)
        body = await resp.json()
        assert resp.status == 403 and body["code"] == "csrf_failed", body
    still = await (await client.get(f"/v1/subscriptions/{sub['id']}", headers=AUTH)).json()
    assert still["enabled"] is True


async def test_a_session_ends_with_its_token(api) -> None:  # type: ignore[no-untyped-def]
    """A session opened with an admin token that is later taken out of api.tokens (the
    bridge restarted with a new config, on the same Redis) is over: the console sends
    its holder to sign in again and acts with no other token."""
    from dataclasses import replace

    from aiohttp.test_utils import TestClient, TestServer

    from bridge.api.context import CTX
    from bridge.api.server import build_api

    client, _, _ = api
    resp = await client.post("/ui/login", data={"token": "second-token"}, allow_redirects=False)
    cookie = resp.cookies["bridge_session"].value
    assert (await client.get("/ui", allow_redirects=False)).status == 200
    ctx = replace(client.server.app[CTX], tokens=(TOKEN,))  # "second-token" revoked
    restarted = TestClient(TestServer(build_api(ctx)))
    await restarted.start_server()
    try:
        restarted.session.cookie_jar.update_cookies({"bridge_session": cookie})
        after = await restarted.get("/ui", allow_redirects=False)
        assert after.status == 303 and after.headers["Location"] == "/ui/login"
    finally:
        await restarted.close()


async def test_pages_show_what_an_operator_needs(api) -> None:  # type: ignore[no-untyped-def]
    """A dead delivery's attempts show the receiver's answer (its snippet); the watches
    filter starts empty; rotating a v1a subscription shows the public key receivers
    verify with."""
    from bridge.model import Attempt, Delivery, DeliveryStatus
    from bridge.store.deliveries import DeliveryStore

    client, store, _ = api
    await sign_in(client)
    dead = Delivery(
        id="dlv_x", event_id="evt_x", subscription_id="sub_x", status=DeliveryStatus.DEAD,
        created_at=1.0, detected_at=1.0,
        attempts=(Attempt(2.0, 500, 0.1, "HTTP 500", "the receiver says no"),),
    )  # fmt: skip
    await DeliveryStore(store).add_deliveries([dead], 1.0)
    page = await (await client.get("/ui/deliveries?status=dead")).text()
    assert "500 &quot;the receiver says no&quot;" in page and "HTTP 500" not in page
    watches = await (await client.get("/ui/watches")).text()
    assert 'name="source" value=""' in watches
    created = await client.post(
        "/v1/subscriptions",
        headers=AUTH,
        json={"url": "https://hooks.example.com/ed", "signature": "v1a"},
    )
    sub = await created.json()
    rotated = await client.post(
        f"/ui/subscriptions/{sub['id']}/rotate", data={"csrf": await csrf_of(client)}
    )
    text = await rotated.text()
    assert rotated.status == 200 and 'id="public-key">whpk_' in text


async def test_a_link_made_elsewhere_puts_no_words_in_the_console(api) -> None:  # type: ignore[no-untyped-def]
    """/ui?ok=… from a link someone else made shows nothing; the notice an action leaves
    behind (sealed with the session's CSRF token) is shown."""
    client, _, _ = api
    await sign_in(client)
    forged = await (await client.get("/ui?ok=Your+token+expired,+mail+it+to+x")).text()
    assert "mail it to" not in forged
    created = await client.post(
        "/v1/subscriptions", headers=AUTH, json={"url": "https://hooks.example.com/n"}
    )
    sub = await created.json()
    done = await client.post(
        f"/ui/subscriptions/{sub['id']}/disable", data={"csrf": await csrf_of(client)}
    )
    assert f"{sub['id']}: disabled" in await done.text()


async def test_the_cookie_is_secure_behind_a_tls_proxy(api) -> None:  # type: ignore[no-untyped-def]
    """Signed in through a proxy that ended TLS (X-Forwarded-Proto: https), the session
    cookie is Secure; over plain http without it, it cannot be."""
    client, _, _ = api
    resp = await client.post(
        "/ui/login", data={"token": TOKEN}, headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.cookies["bridge_session"]["secure"]


async def test_an_unknown_console_page_is_a_page(api) -> None:  # type: ignore[no-untyped-def]
    """/ui/nonexistent answers an HTML 404 with a way back, not the API's JSON."""
    client, _, _ = api
    resp = await client.get("/ui/nonexistent")
    assert resp.status == 404 and resp.content_type == "text/html"
    assert 'href="/ui"' in await resp.text()


async def test_failed_sign_ins_are_braked(api) -> None:  # type: ignore[no-untyped-def]
    """Past the brake's limit of wrong tokens from one address, the sign-in page says
    to wait (429, Retry-After) and signs nobody in, even with a right token."""
    from bridge.api.auth import BRAKE, MAX_FAILURES

    client, _, _ = api
    client.server.app[BRAKE].now = lambda: 5000.0
    for _ in range(MAX_FAILURES):
        wrong = await client.post("/ui/login", data={"token": "guess"}, allow_redirects=False)
        assert wrong.status == 303
    held = await client.post("/ui/login", data={"token": TOKEN}, allow_redirects=False)
    assert held.status == 429 and "Retry-After" in held.headers
    assert "bridge_session" not in held.cookies and "text/html" in held.content_type


async def test_metadata_shows_on_the_watch_and_beside_a_subscriptions_types(api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    await sign_in(client)
    body = {"source": "fs", "job_id": "cm", "metadata": {"tenant": "acme", "run": "r-17"}}
    watch = await (await client.post("/v1/watches", headers=AUTH, json=body)).json()
    page = await (await client.get(f"/ui/watches/{watch['id']}")).text()
    assert "tenant=acme, run=r-17" in page
    sub = {"url": "https://hooks.example.com/m", "metadata": {"tenant": "acme"}}
    assert (await client.post("/v1/subscriptions", headers=AUTH, json=sub)).status == 201
    subs = await (await client.get("/ui/subscriptions")).text()
    assert "where tenant=acme" in subs


async def test_register_and_delete_a_watch_from_the_console(api) -> None:  # type: ignore[no-untyped-def]
    """The watches page registers a watch (with metadata) and its page deletes it; a
    malformed metadata field or an unknown source is the API's error, nothing stored."""
    client, store, _ = api
    await sign_in(client)
    csrf = await csrf_of(client)
    form = {"csrf": csrf, "source": "fs", "job_id": "imp-9", "kind": "", "metadata": "tenant=acme"}
    made = await client.post("/ui/watches", data=form)
    text = await made.text()
    assert made.status == 200 and "/ui/watches/w_" in str(made.url) and "imp-9 registered" in text
    assert "tenant=acme" in text and 'class="chart"' in text and "no polls yet" in text
    listed = await (await client.get("/v1/watches?source=fs&job_id=imp-9", headers=AUTH)).json()
    (watch,) = listed["items"]
    assert watch["metadata"] == {"tenant": "acme"}
    bad = await client.post("/ui/watches", data={**form, "job_id": "imp-10", "metadata": "tenant"})
    assert bad.status == 422 and "expected key=value" in await bad.text()
    unknown = await client.post("/ui/watches", data={**form, "source": "nope", "metadata": ""})
    assert unknown.status == 422 and "unknown_source" in await unknown.text()
    assert (await store.watch_counts())["total"] == 1
    gone = await client.post(f"/ui/watches/{watch['id']}/delete", data={"csrf": csrf})
    assert "deleted: it is no longer polled" in await gone.text()
    assert (await client.get(f"/v1/watches/{watch['id']}", headers=AUTH)).status == 404


async def test_a_watch_page_shows_its_counts_and_their_progress(api) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from bridge.model import Counts, WatchKey

    client, store, _ = api
    await sign_in(client)
    watch, _ = await store.register(WatchKey("td", "users", "imp-c"), 1000.0)
    claimed = await store.claim(1000.0, 60, 1)
    polled = replace(
        claimed[0].watch,
        counts=Counts(total=100, succeeded=40, failed=2),
        progress=((1000.0, 1010.0, 20), (1020.0, 1030.0, 42)),
        timeline=((1000.0, "new", "RUNNING"), (1020.0, "progress", "RUNNING")),
    )
    await store.reschedule(claimed[0], polled, 1100.0)
    page = await (await client.get(f"/ui/watches/{watch.id}")).text()
    assert "42 / 100 (2 failed)" not in page  # the list has that; the page has cards
    assert "<b>100</b>total" in page and "<b>40</b>succeeded" in page and "<b>2</b>failed" in page
    assert 'class="card alarm"' in page  # failed records are not zero
    assert 'class="bar"' in page and "<circle" in page and "poll: progress" in page
    listing = await (await client.get("/ui/watches")).text()
    assert "42 / 100 (2 failed)" in listing


async def test_the_overview_draws_three_charts_and_counts_dead_letters(api) -> None:  # type: ignore[no-untyped-def]
    """Three charts from the fleet's trend buckets; dead deliveries counted while they
    are dead (and no longer once retried)."""
    from bridge.api.context import CTX
    from bridge.model import Attempt, Delivery, DeliveryStatus
    from bridge.store.deliveries import DeliveryStore
    from bridge.store.trends import TrendStore

    client, store, _ = api
    now = client.server.app[CTX].clock.now()
    await TrendStore(store).add({"sent:fs": 30, "dlv:succeeded": 4, "dlv:dead": 1, "ttn:3": 2}, now)
    deliveries = DeliveryStore(store)
    pending = Delivery(id="dlv_d", event_id="evt_d", subscription_id="sub_d",
                       status=DeliveryStatus.PENDING, created_at=now, detected_at=now)  # fmt: skip
    await deliveries.add_deliveries([pending], now)
    (claimed,), _ = await deliveries.claim_versioned(now, 30, 1)
    await deliveries.record(claimed, claimed.delivery.dead(Attempt(now, 500, 0.1, "HTTP 500")), 600)
    await sign_in(client)
    page = await (await client.get("/ui")).text()
    assert page.count('<svg viewBox="0 0 ') == 3
    assert "Time to notice" in page and "Delivery attempts by outcome" in page
    assert "Budget used per source" in page
    assert (
        '<div class="card alarm"><a href="/ui/deliveries?status=dead"><b>1</b>dead letters' in page
    )
    status = await (await client.get("/v1/status", headers=AUTH)).json()
    assert status["queues"]["deliveries_dead"] == 1
    assert (await client.post("/v1/deliveries/dlv_d/retry", headers=AUTH)).status < 300
    status = await (await client.get("/v1/status", headers=AUTH)).json()
    assert status["queues"]["deliveries_dead"] == 0


async def test_a_delivery_page_shows_the_request_with_secrets_masked(api) -> None:  # type: ignore[no-untyped-def]
    """Headers as they go out, with the signature's value and every custom header value
    masked; the body; the event's page links its delivery."""
    client, _, _ = api
    await sign_in(client)
    body = {"url": "https://hooks.example.com/d", "headers": {"X-Api-Key": "k-very-secret"}}
    sub = await (await client.post("/v1/subscriptions", headers=AUTH, json=body)).json()
    assert (await client.post(f"/v1/subscriptions/{sub['id']}/test", headers=AUTH)).status < 300
    listing = await (await client.get("/v1/deliveries", headers=AUTH)).json()
    (d,) = listing["items"]
    page = await (await client.get("/ui/deliveries")).text()
    assert (
        f'href="/ui/deliveries/{d["id"]}"' in page and f'href="/ui/events/{d["event_id"]}"' in page
    )
    detail = await (await client.get(f"/ui/deliveries/{d['id']}")).text()
    assert "webhook-signature" in detail and "v1,••••••" in detail and "X-Api-Key" in detail
    assert "k-very-secret" not in detail and sub["secret"] not in detail
    assert d["event_id"] in detail and "POST <code>https://hooks.example.com/d</code>" in detail
    event = await (await client.get(f"/ui/events/{d['event_id']}")).text()
    assert f'href="/ui/deliveries/{d["id"]}"' in event and "Replay to every subscriber" in event


async def test_the_event_browser_filters_by_type_and_source(api) -> None:  # type: ignore[no-untyped-def]
    from bridge.model import Event
    from bridge.store.deliveries import DeliveryStore

    client, store, _ = api
    await sign_in(client)
    events = [
        Event("evt_1", "import.completed", "2027-01-01T00:00:00Z", "w_1", {"source": "fs"}),
        Event("evt_2", "import.failed", "2027-01-01T00:00:01Z", "w_2", {"source": "td"}),
        Event("evt_3", "import.completed", "2027-01-01T00:00:02Z", "w_3", {"source": "td"}),
    ]
    await DeliveryStore(store).emit_many(events, 1_800_000_000.0, 3600)
    everything = await (await client.get("/ui/events")).text()
    assert all(f"/ui/events/{e.id}" in everything for e in events)
    td_done = await (await client.get("/ui/events?type=import.completed&source=td")).text()
    assert "evt_3" in td_done and "evt_1" not in td_done and "evt_2" not in td_done
    api_side = await (await client.get("/v1/events?source=fs", headers=AUTH)).json()
    assert [e["id"] for e in api_side["items"]] == ["evt_1"]
    wrong = await client.get("/ui/events?type=import.nothing")
    assert wrong.status == 400 and "invalid_type" in await wrong.text()


async def test_a_subscription_is_deleted_from_the_console(api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    await sign_in(client)
    sub = await (
        await client.post("/v1/subscriptions", headers=AUTH, json={"url": "https://h.example/x"})
    ).json()
    page = await client.post(
        f"/ui/subscriptions/{sub['id']}/delete", data={"csrf": await csrf_of(client)}
    )
    assert f"{sub['id']}: deleted" in await page.text()
    assert (await client.get(f"/v1/subscriptions/{sub['id']}", headers=AUTH)).status == 404


async def test_an_events_page_finds_its_progress_delivery_and_masks_urls(api) -> None:  # type: ignore[no-untyped-def]
    """A progress event's delivery is its job's channel; a chat subscription's URL (a
    credential in its path) is masked on every page."""
    from bridge.delivery.deliverer import deliveries_for
    from bridge.model import Event
    from bridge.store.deliveries import DeliveryStore

    client, store, _ = api
    await sign_in(client)
    body = {"url": "https://hooks.slack.com/services/T0/B0/sekrit", "format": "slack",
            "event_types": ["import.progress"]}  # fmt: skip
    assert (await client.post("/v1/subscriptions", headers=AUTH, json=body)).status == 201
    deliveries = DeliveryStore(store)
    event = Event("evt_p", "import.progress", "2027-01-01T00:00:00Z", "w_1", {"source": "fs"})
    await deliveries.emit_many([event], 1_800_000_000.0, 3600)
    made = deliveries_for(event, await deliveries.list_subscriptions(), 1_800_000_000.0)
    await deliveries.fan_out_many([("", made)], 1_800_000_000.0, {made[0].id: "progress"})
    page = await (await client.get("/ui/events/evt_p")).text()
    assert f'href="/ui/deliveries/{made[0].id}"' in page
    for path in ("/ui/events/evt_p", f"/ui/deliveries/{made[0].id}", "/ui/subscriptions"):
        text = await (await client.get(path)).text()
        assert "sekrit" not in text and "hooks.slack.com/**********" in text, path


async def test_redis_holds_no_session_id(api) -> None:  # type: ignore[no-untyped-def]
    """A session is stored under a hash of its id: what Redis holds signs nobody in."""
    client, store, _ = api
    sid = await sign_in(client)
    keys = [k async for k in store.client.scan_iter("*")]
    assert keys and not any(sid in k for k in keys)
    values = [await store.client.get(k) for k in keys if await store.client.type(k) == "string"]
    assert not any(sid in str(v) for v in values)
