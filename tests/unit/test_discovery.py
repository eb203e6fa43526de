"""Talkdesk discovery against scripted list pages (fakeredis, a fake clock): the list's
order, odd items, deleted watches, 429s and a budget the polls use in full."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest

from bridge.clock import FakeClock
from bridge.errors import NoSlot
from bridge.model import WatchKey
from bridge.poll.discovery import DiscoveredSource, Discovery, newest_first
from bridge.poll.ratelimit import outside_claim_wait_s
from bridge.providers.http import HttpAnswer
from bridge.store.redis import RedisStore
from tests.unit.helpers import TD, ScriptedHttp, ok, td_provider

LIST = f"{TD}/bulk-imports/users"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def page(items: list[dict[str, Any]], nxt: str | None = None) -> HttpAnswer:
    body: dict[str, Any] = {"_embedded": {"imports": items}, "_links": {}}
    if nxt:
        body["_links"]["next"] = {"href": nxt}
    return HttpAnswer(200, json.dumps(body).encode())


@pytest.fixture
async def env(prefix: str):  # type: ignore[no-untyped-def]
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = RedisStore(client, prefix)
    clock = FakeClock()
    http = ScriptedHttp()
    http.queue(f"{TD}/oauth/token", ok({"access_token": "t", "expires_in": 3600}))
    provider = td_provider(store, clock, http)
    src = DiscoveredSource("td", provider, rate_limit=0, burst=1, since_s=3600, every_s=60)
    discovery = Discovery(store=store, http=http, sources=[src], clock=clock)
    yield store, clock, http, discovery, src
    await client.aclose()


async def watched(store: RedisStore) -> set[str]:
    watches, _ = await store.list_watches(limit=500)
    return {w.job_id for w in watches}


async def test_an_oldest_first_list_is_read_to_its_end(env) -> None:  # type: ignore[no-untyped-def]
    """The list's order is not documented: a first page of old imports running oldest
    first does not end the look; the new imports on the next page are watched."""
    store, clock, http, discovery, src = env
    now = clock.now()
    old = [{"id": f"old{i}", "status": "COMPLETED", "created_at": iso(now - 9000 + i)}
           for i in range(3)]  # fmt: skip
    new = [{"id": f"new{i}", "status": "IN_PROGRESS", "created_at": iso(now - 60 + i)}
           for i in range(2)]  # fmt: skip
    http.queue(LIST, page(old, f"{LIST}?page=2"))
    http.queue(f"{LIST}?page=2", page(new))
    assert await discovery.discover(src) == 2
    assert await watched(store) == {"new0", "new1"}


async def test_a_newest_first_list_stops_at_the_first_old_page(env) -> None:  # type: ignore[no-untyped-def]
    """Newest first, a page all older than the window ends the look: the next page is
    not read (it costs a request of the budget)."""
    _store, clock, http, discovery, src = env
    now = clock.now()
    old = [{"id": f"old{i}", "status": "COMPLETED", "created_at": iso(now - 9000 - i)}
           for i in range(3)]  # fmt: skip
    http.queue(LIST, page(old, f"{LIST}?page=2"))
    assert await discovery.discover(src) == 0
    assert http.count(f"{LIST}?page=2") == 0
    assert newest_first([("a", iso(now)), ("b", iso(now - 1))])
    assert not newest_first([("a", iso(now - 1)), ("b", iso(now))])
    assert not newest_first([("a", iso(now))])  # one dated import says nothing


async def test_an_odd_import_does_not_spoil_its_page(env) -> None:  # type: ignore[no-untyped-def]
    """An import with a null status or counts as strings, or not an object at all, is
    skipped; the others on its page are watched."""
    store, clock, http, discovery, src = env
    now = clock.now()
    items: list[Any] = [
        {"id": "odd", "status": None, "total_records": "12", "created_at": iso(now - 5)},
        "not an import",
        {"id": 7, "created_at": iso(now - 4)},
        {"id": "fine", "status": "QUEUED", "created_at": iso(now - 3)},
    ]
    http.queue(LIST, page(items))
    assert await discovery.discover(src) == 2
    assert await watched(store) == {"odd", "fine"}


async def test_a_deleted_watch_is_not_discovered_again(env) -> None:  # type: ignore[no-untyped-def]
    """An operator deleted a discovered watch: the next looks leave the import be; a
    registration by hand watches it again."""
    store, clock, http, discovery, src = env
    http.queue(LIST, page([{"id": "imp", "status": "IN_PROGRESS", "created_at": iso(clock.now())}]))
    assert await discovery.discover(src) == 1
    [watch] = (await store.list_watches())[0]
    assert await store.delete_watch(watch, 3600)
    assert await discovery.discover(src) == 0
    assert await watched(store) == set()
    again, new = await store.register(WatchKey("td", "users", "imp"), clock.now())
    assert new and not again.discovered


async def test_a_429_on_the_list_pauses_the_source(env) -> None:  # type: ignore[no-untyped-def]
    """The list answers 429: the whole source waits its Retry-After (no poll goes out
    meanwhile), as for a status poll."""
    store, _, http, discovery, src = env
    http.queue(LIST, HttpAnswer(429, b"{}", {"Retry-After": "120"}))
    src.last_run = float("-inf")
    await discovery._look_all()
    assert await store.sources.pause_left("td") > 100


async def test_the_list_takes_its_turn_when_polls_use_the_whole_budget(env) -> None:  # type: ignore[no-untyped-def]
    """Polls have reserved every slot the claim may (a little over two ticks ahead):
    a page of the list still gets the next free slot instead of giving up."""
    store, clock, http, discovery, src = env
    rate, claim_horizon = 20.0, 0.5
    while True:  # what the claim does at full demand
        try:
            await store.sources.acquire("td", rate, 1, claim_horizon)
        except NoSlot:
            break
    src.rate_limit = rate
    http.queue(LIST, page([{"id": "late", "status": "QUEUED", "created_at": iso(clock.now())}]))
    assert await discovery.discover(src) == 1
    assert outside_claim_wait_s(rate) >= 10 and outside_claim_wait_s(0.05) == 40


async def test_a_look_under_way_ends_with_the_bridge(env) -> None:  # type: ignore[no-untyped-def]
    """The ticker starts a look in the background and returns; a stop while the list
    hangs ends the look within its bound and releases the fleet-wide lock."""
    import asyncio

    store, _, http, discovery, _src = env
    answered = asyncio.Event()

    async def hanging(method: str, url: str, **kw: Any) -> HttpAnswer:
        answered.set()
        await asyncio.Event().wait()  # an upstream that never answers
        raise AssertionError("unreachable")

    http.request = hanging
    await store.sources.set_token("td", "t", 3600)  # no token request first
    await discovery.tick()
    await asyncio.wait_for(answered.wait(), 5)  # the look is under way, the tick returned
    await discovery.stop(0.1)
    assert discovery._looking is not None and discovery._looking.done()
    assert await store.client.get(store.keys.lock("discover:td")) is None


async def test_a_relative_next_link_is_followed(env) -> None:  # type: ignore[no-untyped-def]
    """HAL allows relative hrefs: 70 imports, 50 a page, the next link a path of its
    own; every one of them is watched, on the configured host."""
    store, clock, http, discovery, src = env
    now = clock.now()
    imports = [{"id": f"imp{i}", "status": "QUEUED", "created_at": iso(now - i)} for i in range(70)]
    http.queue(LIST, page(imports[:50], "/bulk-imports/users?page=2&per_page=50"))
    http.queue(f"{LIST}?page=2&per_page=50", page(imports[50:]))
    assert await discovery.discover(src) == 70
    assert len(await watched(store)) == 70


async def test_a_next_link_to_another_host_is_followed_on_the_configured_one(env) -> None:  # type: ignore[no-untyped-def]
    """The vendor's own example names a documentation host: its path and query are read
    from the configured host (the token goes nowhere else), and the detour is counted."""
    from bridge.metrics import Metrics

    store, clock, http, _discovery, src = env
    metrics = Metrics()
    discovery = Discovery(store=store, http=http, sources=[src], clock=clock, metrics=metrics)
    now = clock.now()
    http.queue(LIST, page([{"id": "a", "created_at": iso(now)}],
                          "http://api-docs.talkdesk.org/bulk-imports/users?page=2"))  # fmt: skip
    http.queue(f"{LIST}?page=2", page([{"id": "b", "created_at": iso(now - 1)}]))
    assert await discovery.discover(src) == 2
    assert all("api-docs" not in url for _, url, _ in http.requests)
    assert metrics.guarded.labels("discovery_link_rehomed")._value.get() == 1


def test_next_links_resolve_against_the_page_and_keep_a_base_path() -> None:
    """Relative hrefs of every HAL shape resolve against the page they came from; a
    base URL with a path keeps it for a link to another host."""
    from bridge.providers.talkdesk import next_page_url

    base = "https://api.td.test"
    page_url = f"{base}/bulk-imports/users?page=1"
    assert next_page_url("?page=2", page_url, base) == (f"{base}/bulk-imports/users?page=2", None)
    assert next_page_url("users?page=2", page_url, base)[0] == f"{base}/bulk-imports/users?page=2"
    assert next_page_url(f"{base}/x?p=2", page_url, base) == (f"{base}/x?p=2", None)
    assert next_page_url("//evil.test/x?p=2", page_url, base) == (f"{base}/x?p=2", "evil.test")
    sim = "http://127.0.0.1:8900/talkdesk"
    assert next_page_url(
        "https://docs.test/bulk-imports/users?p=2", f"{sim}/bulk-imports/users", sim
    )[0] == (f"{sim}/bulk-imports/users?p=2")


async def test_discovery_watches_at_most_its_cap(env) -> None:  # type: ignore[no-untyped-def]
    """A list whose ids change at every look cannot grow the store without end: beyond
    discover_max_watches within poll.max_age nothing new is watched, and the refusal is
    counted; a job already watched is not counted as refused."""
    from bridge.metrics import Metrics

    store, clock, http, _discovery, src = env
    metrics = Metrics()
    discovery = Discovery(store=store, http=http, sources=[src], clock=clock, metrics=metrics)
    src.max_watches = 5
    for look in range(3):
        now = clock.now()
        items = [{"id": f"l{look}-{i}", "created_at": iso(now - i)} for i in range(4)]
        http.script[LIST] = [page(items)]
        await discovery.discover(src)
        clock.advance(30)
    assert len(await watched(store)) == 5
    assert metrics.guarded.labels("discovery_cap")._value.get() == 7
    http.script[LIST] = [page([{"id": "l0-0", "created_at": iso(clock.now() - 100)}])]
    assert await discovery.discover(src) == 0
    assert metrics.guarded.labels("discovery_cap")._value.get() == 7
    clock.advance(src.window_s)  # the first ones have expired: room again
    http.script[LIST] = [page([{"id": "late", "created_at": iso(clock.now())}])]
    assert await discovery.discover(src) == 1
