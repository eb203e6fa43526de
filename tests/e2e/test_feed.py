"""The pull feed over real sockets: a long poll that returns when an event exists, an
SSE stream resumed with Last-Event-ID that misses nothing and repeats nothing, and
read tokens that may read events and nothing else."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec, Simulator
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import TOKEN, auth, start_sim_and_receiver, wait_until, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

READER = "feed-reader-token-0123456789"


class Feed:
    def __init__(self, sim: Simulator, api: str) -> None:
        self.sim, self.api = sim, api
        self.admin = aiohttp.ClientSession(headers=auth())
        self.reader = aiohttp.ClientSession(headers={"Authorization": f"Bearer {READER}"})

    async def job(self, job_id: str, duration: float = 0.3) -> None:
        self.sim.add_job(JobSpec(provider="fullstory", id=job_id, duration=duration))
        resp = await self.admin.post(
            f"{self.api}/v1/watches", json={"source": "fs", "job_id": job_id}
        )
        assert resp.status == 201

    async def poll(self, **query: str) -> tuple[int, Any]:
        resp = await self.reader.get(f"{self.api}/v1/events", params=query)
        return resp.status, await resp.json()


@pytest.fixture
async def feed(tmp_path: Path, redis_server: EmbeddedRedis, prefix: str) -> AsyncIterator[Feed]:
    sim, server, receiver = await start_sim_and_receiver()
    cfg = write_config(tmp_path / "bridge.toml", server, redis_url=redis_server.url, prefix=prefix)
    cfg.write_text(cfg.read_text().replace(
        f'tokens = ["{TOKEN}"]', f'tokens = ["{TOKEN}"]\nread_tokens = ["{READER}"]'
    ))  # fmt: skip
    bridge = Bridge(load_settings(cfg), redis_url=redis_server.url)
    await bridge.start()
    f = Feed(sim, f"http://127.0.0.1:{bridge.api_port}")
    yield f
    await f.admin.close()
    await f.reader.close()
    await bridge.stop(grace_s=1)
    await receiver.close()
    await server.close()


async def test_long_poll_returns_when_an_event_exists(feed: Feed) -> None:
    """With nothing after the cursor the request waits; it returns with the event once
    the job ends, well before `wait` runs out; looping on next_cursor repeats nothing;
    with nothing new it returns the same cursor after `wait`."""
    status, empty = await feed.poll(wait="0")
    assert status == 200 and empty["items"] == [] and empty["next_cursor"]
    waiting = asyncio.ensure_future(feed.poll(after=empty["next_cursor"], wait="30"))
    started = time.monotonic()
    await feed.job("lp-1")
    status, got = await waiting
    took = time.monotonic() - started
    assert status == 200 and [e["data"]["job_id"] for e in got["items"]] == ["lp-1"]
    assert took < 30, took  # returned for the event, not by the wait running out
    print(f"long poll returned {took:.2f} s after the job was registered (job: 0.3 s)")
    await feed.job("lp-2")
    status, nxt = await feed.poll(after=got["next_cursor"], wait="30")
    assert [e["data"]["job_id"] for e in nxt["items"]] == ["lp-2"]
    status, none = await feed.poll(after=nxt["next_cursor"], wait="0.3")
    assert none == {"items": [], "next_cursor": nxt["next_cursor"]}
    status, everything = await feed.poll(after="0-0")
    assert [e["data"]["job_id"] for e in everything["items"]] == ["lp-1", "lp-2"]


async def test_bad_feed_parameters_and_read_tokens(feed: Feed) -> None:
    """A cursor this API did not hand out or a wait over 60 s is a 400 in the error
    shape; a read token reads events, and gets 403 anywhere else."""
    for query, field in (({"after": "nope"}, "after"), ({"wait": "61"}, "wait"),
                         ({"after": "99999999999999999999-0"}, "after"),
                         ({"after": "1-1\n"}, "after"), ({"after": "\u0661-\u0661"}, "after"),
                         ({"after": "18446744073709551615-18446744073709551615"}, "after"),
                         ({"wait": "-1"}, "wait"), ({"after": "1-1", "wait": "nan"}, "wait")):  # fmt: skip
        status, body = await feed.poll(**query)
        assert status == 400 and body["fields"][0]["name"] == field, (query, body)
    for method, path in (("GET", "/v1/watches"), ("POST", "/v1/watches"),
                         ("GET", "/v1/status"), ("GET", "/v1/subscriptions")):  # fmt: skip
        resp = await feed.reader.request(method, f"{feed.api}{path}", json={})
        assert resp.status == 403 and (await resp.json())["code"] == "forbidden"
    assert (await feed.reader.get(f"{feed.api}/v1/events")).status == 200
    nobody = await aiohttp.ClientSession().__aenter__()
    try:
        assert (await nobody.get(f"{feed.api}/v1/events")).status == 401
    finally:
        await nobody.close()


async def read_sse(resp: aiohttp.ClientResponse, count: int) -> list[dict[str, str]]:
    """The next `count` events of an SSE response, each as its fields."""
    events: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if "id" in fields:
                events.append(fields)
                if len(events) == count:
                    return events
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return events


async def test_sse_resumes_with_last_event_id(feed: Feed) -> None:
    """The stream sends each event with its cursor as id; a client that reconnects with
    Last-Event-ID gets the events after it: nothing missed, nothing repeated."""
    await feed.job("sse-1", duration=0.2)
    await feed.job("sse-2", duration=1.0)  # ends well after sse-1: a known order

    async def two_written() -> bool:
        _, page = await feed.poll(after="0-0")
        return len(page["items"]) == 2

    await wait_until(two_written, 20, "two events")
    first = await feed.reader.get(f"{feed.api}/v1/events/stream")
    assert first.headers["Content-Type"].startswith("text/event-stream")
    got = await asyncio.wait_for(read_sse(first, 2), 20)
    first.close()
    assert [json.loads(e["data"])["data"]["job_id"] for e in got] == ["sse-1", "sse-2"]
    assert [e["event"] for e in got] == ["import.completed"] * 2
    await feed.job("sse-3")
    resumed = await feed.reader.get(
        f"{feed.api}/v1/events/stream", headers={"Last-Event-ID": got[-1]["id"]}
    )
    again = await asyncio.wait_for(read_sse(resumed, 1), 20)
    resumed.close()
    assert [json.loads(e["data"])["data"]["job_id"] for e in again] == ["sse-3"]
    assert again[0]["id"] > got[-1]["id"] or len(again[0]["id"]) > len(got[-1]["id"])


async def test_expired_events_do_not_stall_the_feed(
    feed: Feed, redis_server: EmbeddedRedis
) -> None:
    """Outbox rows whose event has expired (retention) are passed over: the cursor moves
    past them, so a consumer behind a long run of them still reaches the live ones."""
    await feed.job("before")

    async def one() -> bool:
        _, page = await feed.poll(after="0-0")
        return len(page["items"]) == 1

    await wait_until(one, 20, "the first event")
    _, page = await feed.poll(after="0-0")
    start = page["next_cursor"]
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter("*:outbox")]
        outbox = next(k for k in keys if "{" in k)
        for i in range(120):  # rows whose events are gone
            await client.xadd(outbox, {"event_id": f"evt_gone_{i}", "type": "x", "watch_id": ""})
    finally:
        await client.aclose()
    await feed.job("after")
    got: list[str] = []
    cursor = start
    for _ in range(5):
        _, page = await feed.poll(after=cursor, wait="5")
        got += [e["data"]["job_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if got:
            break
    assert got == ["after"]
