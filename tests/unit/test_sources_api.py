"""Sources defined at run time through /v1/sources: the config file's model and rules,
secrets write-only, the config file's sources untouchable, every replica told."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.api.server import ApiContext, build_api
from bridge.clock import FakeClock
from bridge.metrics import Metrics
from bridge.sealing import Sealer, new_key, parse_key
from bridge.source_defs import parse_source
from bridge.sources_live import LiveSources
from bridge.store.redis import RedisStore
from bridge.store.source_defs import SourceDefStore
from tests.unit.helpers import AUTH, TOKEN, csrf_of, sign_in

KEY = parse_key(new_key())
FS_KEY = "fs-api-key-very-secret"


@pytest.fixture
async def sources_api(prefix: str) -> AsyncIterator[tuple[TestClient, LiveSources, RedisStore]]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = RedisStore(redis, prefix, sealer=Sealer([KEY]))
    static = {"td": parse_source({"provider": "talkdesk", "account": "a", "client_id": "c",
                                  "client_secret": "s"})}  # fmt: skip
    live = LiveSources(static, SourceDefStore(store))
    await live.refresh(strict=True)

    async def check(name: str) -> dict[str, Any]:
        return {"ok": True, "reason": f"checked {name}"}

    ctx = ApiContext(store=store, clock=FakeClock(), metrics=Metrics(), source_kinds={},
                     tokens=(TOKEN,), max_body_bytes=4096, sources=live,
                     check_source=check)  # fmt: skip
    client = TestClient(TestServer(build_api(ctx)))
    await client.start_server()
    yield client, live, store
    await client.close()
    await redis.aclose()


async def test_a_source_is_defined_shown_changed_checked_and_deleted(sources_api) -> None:  # type: ignore[no-untyped-def]
    client, live, store = sources_api
    body = {"name": "acme-fs", "provider": "fullstory", "api_key": FS_KEY, "rate_limit": 2}
    made = await client.post("/v1/sources", headers=AUTH, json=body)
    view = await made.json()
    assert made.status == 201 and view["name"] == "acme-fs" and view["static"] is False
    assert view["api_key"] == "**********" and FS_KEY not in await made.text()
    assert "acme-fs" in live.current.configs  # this replica at once
    listed = await (await client.get("/v1/sources", headers=AUTH)).json()
    assert {(s["name"], s["static"]) for s in listed["items"]} == {("acme-fs", False),
                                                                   ("td", True)}  # fmt: skip
    stored = await store.client.hgetall(store.keys.source_defs)
    assert FS_KEY not in str(stored) and str(stored["acme-fs"]).startswith("sealed:1:")
    again = await client.post("/v1/sources", headers=AUTH, json=body)
    assert again.status == 409 and (await again.json())["code"] == "source_exists"
    patched = await client.patch("/v1/sources/acme-fs", headers=AUTH, json={"rate_limit": 3})
    assert patched.status == 200 and (await patched.json())["rate_limit"] == 3
    assert live.current.configs["acme-fs"].api_key.get_secret_value() == FS_KEY  # type: ignore[attr-defined]
    checked = await client.post("/v1/sources/acme-fs/check", headers=AUTH)
    assert (await checked.json()) == {"ok": True, "reason": "checked acme-fs"}
    assert (await client.delete("/v1/sources/acme-fs", headers=AUTH)).status == 204
    assert "acme-fs" not in live.current.configs and "acme-fs" in live.current.deleted
    assert (await client.get("/v1/sources/acme-fs", headers=AUTH)).status == 404
    made = await client.post("/v1/sources", headers=AUTH, json=body)  # the name again
    assert made.status == 201 and "acme-fs" not in live.current.deleted


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "fullstory", "api_key": "k"}, "name"),
        ({"name": "bad name!", "provider": "fullstory", "api_key": "k"}, "name"),
        ({"name": "x", "provider": "nope"}, "provider"),
        ({"name": "x", "provider": "fullstory"}, "api_key"),
        ({"name": "x", "provider": "fullstory", "api_key": "k", "rate_limit": -1}, "rate_limit"),
        ({"name": "x", "provider": "fullstory", "api_key": "k", "surprise": 1}, "surprise"),
        ({"name": "x", "provider": "fullstory", "api_key": "k", "base_url": "ftp://h"}, "base_url"),
        (
            {"name": "x", "provider": "fullstory", "api_key": "k", "rate_limit": 1, "burst": 5},
            "burst",
        ),
        ({"name": "é", "provider": "fullstory", "api_key": "k"}, "name"),
    ],
)
async def test_a_bad_source_is_a_422_naming_the_key_and_stores_nothing(
    sources_api,
    body: dict[str, Any],
    field: str,  # type: ignore[no-untyped-def]
) -> None:
    client, _, store = sources_api
    resp = await client.post("/v1/sources", headers=AUTH, json=body)
    answer = await resp.json()
    assert resp.status == 422 and answer["code"] == "invalid_request", answer
    assert any(field == f["name"] for f in answer["fields"]), answer
    assert await store.client.hlen(store.keys.source_defs) == 0


async def test_the_config_files_sources_refuse_change(sources_api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = sources_api
    for method in ("patch", "delete"):
        resp = await getattr(client, method)("/v1/sources/td", headers=AUTH, json={})
        assert resp.status == 409 and (await resp.json())["code"] == "source_static"
    clash = {"name": "td", "provider": "fullstory", "api_key": "k"}
    assert (await client.post("/v1/sources", headers=AUTH, json=clash)).status == 409
    view = await (await client.get("/v1/sources/td", headers=AUTH)).json()
    assert view["static"] is True and view["client_secret"] == "**********"


async def test_another_replica_sees_a_change_at_its_next_refresh(sources_api, prefix) -> None:  # type: ignore[no-untyped-def]
    client, _, store = sources_api
    other = LiveSources({}, SourceDefStore(store))
    seen: list[set[str]] = []
    other.on_change(lambda current, changed: seen.append(changed))
    await other.refresh()
    body = {"name": "acme-fs", "provider": "fullstory", "api_key": FS_KEY}
    assert (await client.post("/v1/sources", headers=AUTH, json=body)).status == 201
    assert await other.refresh() and seen[-1] == {"acme-fs"}
    assert not await other.refresh()  # nothing moved: one GET, no reading
    wrong = LiveSources({}, SourceDefStore(RedisStore(store.client, prefix,
                                                      sealer=Sealer([parse_key(new_key())]))))  # fmt: skip
    from bridge.sealing import SealError

    with pytest.raises(SealError, match="source acme-fs"):
        await wrong.refresh(strict=True)


async def test_the_console_defines_checks_and_deletes_a_source(sources_api) -> None:  # type: ignore[no-untyped-def]
    client, live, _ = sources_api
    await sign_in(client)
    csrf = await csrf_of(client)
    keys = '{"api_key": "' + FS_KEY + '", "rate_limit": 2}'
    made = await client.post("/ui/sources", data={"csrf": csrf, "name": "acme-fs",
                                                  "provider": "fullstory", "keys": keys})  # fmt: skip
    text = await made.text()
    assert made.status == 200 and "acme-fs defined" in text and FS_KEY not in text
    assert "acme-fs" in live.current.configs
    assert "config file" in text and "defined here" in text  # td, and acme-fs
    bad = await client.post("/ui/sources", data={"csrf": csrf, "name": "x",
                                                 "provider": "fullstory", "keys": "[1"})  # fmt: skip
    assert bad.status == 422 and "a JSON object" in await bad.text()
    checked = await client.post("/ui/sources/acme-fs/check", data={"csrf": csrf})
    assert "the credentials work: checked acme-fs" in await checked.text()
    refused = await client.post("/ui/sources/td/delete", data={"csrf": csrf})
    assert "source_static" in await refused.text()
    gone = await client.post("/ui/sources/acme-fs/delete", data={"csrf": csrf})
    assert "acme-fs deleted" in await gone.text() and "acme-fs" not in live.current.configs


async def test_a_replica_behind_by_several_changes_reads_only_them(sources_api) -> None:  # type: ignore[no-untyped-def]
    client, _, store = sources_api
    other = LiveSources({}, SourceDefStore(store))
    await other.refresh()
    for name in ("a1", "a2", "a3"):
        body = {"name": name, "provider": "fullstory", "api_key": FS_KEY}
        assert (await client.post("/v1/sources", headers=AUTH, json=body)).status == 201
    await other.refresh()
    assert set(other.current.configs) == {"a1", "a2", "a3"}
    assert (await client.delete("/v1/sources/a2", headers=AUTH)).status == 204
    patched = await client.patch("/v1/sources/a3", headers=AUTH, json={"rate_limit": 7})
    assert patched.status == 200
    seen: list[set[str]] = []
    other.on_change(lambda current, changed: seen.append(changed))
    assert await other.refresh()
    assert seen == [{"a2", "a3"}]  # the two that changed, not all three
    assert set(other.current.configs) == {"a1", "a3"} and other.current.deleted == {"a2"}
    assert other.current.configs["a3"].rate_limit == 7
    body = {"name": "a2", "provider": "fullstory", "api_key": FS_KEY}
    assert (await client.post("/v1/sources", headers=AUTH, json=body)).status == 201
    await other.refresh()
    assert "a2" in other.current.configs and not other.current.deleted


async def test_a_patch_starts_from_what_is_stored_and_keeps_every_change(sources_api) -> None:  # type: ignore[no-untyped-def]
    """Another replica's change made meanwhile is kept (compare-and-set on the stored
    document); a change of where requests go needs the secrets again; the provider is
    not changed; null removes a key."""
    import orjson

    client, live, store = sources_api
    body = {"name": "acme-fs", "provider": "fullstory", "api_key": FS_KEY, "rate_limit": 2}
    assert (await client.post("/v1/sources", headers=AUTH, json=body)).status == 201
    defs = SourceDefStore(store)
    stored, text = await defs.get("acme-fs")  # type: ignore[misc]
    elsewhere = {**orjson.loads(text), "burst": 2}  # another replica's change
    assert await defs.replace("acme-fs", orjson.dumps(elsewhere).decode(), 1.0, stored)
    patched = await client.patch("/v1/sources/acme-fs", headers=AUTH, json={"rate_limit": 3})
    view = await patched.json()
    assert patched.status == 200 and view["rate_limit"] == 3 and view["burst"] == 2
    moved = await client.patch("/v1/sources/acme-fs", headers=AUTH,
                               json={"base_url": "https://elsewhere.example"})  # fmt: skip
    answer = await moved.json()
    assert moved.status == 422 and answer["fields"][0]["name"] == "api_key"
    assert FS_KEY not in await moved.text()
    both = {"base_url": "https://elsewhere.example", "api_key": "another-key"}
    assert (await client.patch("/v1/sources/acme-fs", headers=AUTH, json=both)).status == 200
    other = await client.patch("/v1/sources/acme-fs", headers=AUTH, json={"provider": "generic"})
    assert other.status == 422 and (await other.json())["fields"][0]["name"] == "provider"
    unset = await client.patch("/v1/sources/acme-fs", headers=AUTH, json={"burst": None})
    assert (await unset.json())["burst"] == 1  # the default again
    assert live.current.configs["acme-fs"].rate_limit == 3


async def test_a_change_forgets_what_the_old_definition_learned(sources_api) -> None:  # type: ignore[no-untyped-def]
    """Its cached token, 429 pause and health go with a change or a delete: the
    credentials or the upstream may be others now."""
    client, _, store = sources_api
    body = {"name": "acme-fs", "provider": "fullstory", "api_key": FS_KEY}
    assert (await client.post("/v1/sources", headers=AUTH, json=body)).status == 201
    k = store.keys
    learned = [k.source_token("acme-fs"), k.source_pause("acme-fs"), k.source_health("acme-fs")]
    for key in learned:
        await store.client.set(key, "x")
    assert (await client.patch("/v1/sources/acme-fs", headers=AUTH,
                               json={"api_key": "new"})).status == 200  # fmt: skip
    assert await store.client.exists(*learned) == 0


async def test_a_definition_this_replica_cannot_use_is_set_aside_not_in_the_way(
    sources_api,
) -> None:  # type: ignore[no-untyped-def]
    """A definition not a document this version reads (or sealed with a key it lacks)
    is listed as unusable and deletable; every other change is still taken."""
    client, live, store = sources_api
    defs = SourceDefStore(store)
    assert await defs.create("broken", "[1]", 1.0)
    body = {"name": "acme-fs", "provider": "fullstory", "api_key": FS_KEY}
    assert (await client.post("/v1/sources", headers=AUTH, json=body)).status == 201
    assert "acme-fs" in live.current.configs and "broken" in live.current.invalid
    listed = await (await client.get("/v1/sources", headers=AUTH)).json()
    assert {"name": "broken", "static": False, "unusable": live.current.invalid["broken"]} in (
        listed["items"]
    )
    assert (await client.delete("/v1/sources/broken", headers=AUTH)).status == 204
    assert "broken" not in live.current.invalid


async def test_a_version_that_went_back_is_a_full_read(sources_api) -> None:  # type: ignore[no-untyped-def]
    """Redis lost its data (flushed, failed over empty): the replica reads everything
    again, so what vanished goes and what is new comes, whatever the version says."""
    client, live, store = sources_api
    for name in ("a1", "a2", "a3"):
        body = {"name": name, "provider": "fullstory", "api_key": FS_KEY}
        assert (await client.post("/v1/sources", headers=AUTH, json=body)).status == 201
    await store.client.flushdb()
    body = {"name": "b1", "provider": "fullstory", "api_key": FS_KEY}
    assert (await client.post("/v1/sources", headers=AUTH, json=body)).status == 201
    assert set(live.current.configs) == {"td", "b1"}
