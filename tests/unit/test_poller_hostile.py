"""Hostile upstream answers: every one becomes a snapshot or a counted, visible error."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.model import WatchKey, WatchState
from bridge.providers.base import MAX_JSON_DEPTH, TOO_DEEP, bounded_depth, decode_json
from bridge.providers.http import HttpAnswer
from tests.unit.helpers import FS, fs_body, run_due

TOKEN_URL = "http://td.test/oauth/token"


def talkdesk_answering_401_once(poller: Any, http: Any, rate: float, job: str) -> str:
    """The td source at `rate`, a token that the job's first poll finds revoked (401),
    a fresh token, then a running job; returns the job's URL."""
    from bridge.poll.poller import PolledSource

    td = poller._sources["td"]
    poller._sources["td"] = PolledSource("td", td.provider, rate_limit=rate, burst=1)
    http.queue(
        TOKEN_URL,
        HttpAnswer(200, b'{"access_token": "old", "expires_in": 3600}'),
        HttpAnswer(200, b'{"access_token": "new", "expires_in": 3600}'),
    )
    job_url = f"http://td.test/bulk-imports/users/{job}"
    http.queue(job_url, HttpAnswer(401, b"{}"), HttpAnswer(200, b'{"status": "IN_PROGRESS"}'))
    return job_url


class FakeMonotonic:
    """The poller's and the store's monotonic clock (slots, lateness), moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_000.0
        monkeypatch.setattr("bridge.poll.poller.time", self)
        monkeypatch.setattr("bridge.store.redis.time", self)

    def monotonic(self) -> float:
        return self.now

    perf_counter = staticmethod(time.perf_counter)  # durations for the metrics: real


async def limited_fs_jobs(env: Any, rate: float, burst: int, jobs: list[str]) -> list[str]:
    """The fs source at `rate` with `burst`, running jobs registered for each name;
    returns the list the limiters asked for a slot outside the claim are noted in."""
    from bridge.poll.poller import PolledSource

    store, clock, http, poller = env
    fs = poller._sources["fs"]
    poller._sources["fs"] = PolledSource("fs", fs.provider, rate_limit=rate, burst=burst)
    for job in jobs:
        url = f"{FS}/v2/users/batch/{job}"
        http.queue(url, HttpAnswer(200, json.dumps(fs_body("PROCESSING")).encode()))
        await store.register(WatchKey("fs", "users", job), clock.now())
    return record_acquires(store)


def record_acquires(store: Any) -> list[str]:
    """The limiters asked for a slot outside the claim, in order (the store keeps working)."""
    asked: list[str] = []
    real_acquire = store.sources.acquire

    async def recording(limiter: str, *args: Any, **kwargs: Any) -> float:
        asked.append(limiter)
        return await real_acquire(limiter, *args, **kwargs)  # type: ignore[no-any-return]

    store.sources.acquire = recording
    return asked


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": value}
    return value


def test_bounded_depth_cuts_only_what_is_too_deep() -> None:
    """Containers past the limit become a marker; everything shallower is kept as is."""
    assert bounded_depth({"a": [1, {"b": 2}]}, 3) == {"a": [1, {"b": 2}]}
    assert bounded_depth({"a": [1, {"b": 2}]}, 2) == {"a": [1, TOO_DEEP]}
    assert bounded_depth(nested(5000 // 5), MAX_JSON_DEPTH) is not None


async def test_deeply_nested_completed_job_still_gets_its_event(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A COMPLETED answer nested 1,000 levels deep produces its one event, body cut."""
    store, clock, http, poller = poller_env
    url = f"{FS}/v2/users/batch/deep"
    deep = b'{"d":' * 1000 + b"1" + b"}" * 1000  # past what json/orjson can write
    raw = json.dumps(fs_body("COMPLETED", 7)).encode()[:-1] + b', "extra": ' + deep + b"}"
    http.queue(url, HttpAnswer(200, raw))
    watch, _ = await store.register(WatchKey("fs", "users", "deep"), clock.now())
    assert await run_due(store, clock, poller) == ["terminal"]
    [event], _ = await store.events.list_events(watch_id=watch.id)
    assert event.type == "import.completed" and event.data["counts"]["succeeded"] == 7


async def test_too_deep_for_the_parser_is_a_visible_error(poller_env) -> None:  # type: ignore[no-untyped-def]
    """Past what the parser reads at all (2,000 levels): backoff and last_error, no crash."""
    store, clock, http, poller = poller_env
    url = f"{FS}/v2/users/batch/deeper"
    http.queue(url, HttpAnswer(200, b'{"a":' * 2000 + b"1" + b"}" * 2000))
    watch, _ = await store.register(WatchKey("fs", "users", "deeper"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    stored = await store.get_watch(watch.id)
    assert stored and stored.state is WatchState.WATCHING and stored.polls == 1
    assert stored.errors == 1 and "too deep" in (stored.last_error or "")


async def test_an_unforeseen_parse_failure_is_counted_not_silent(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A provider that raises something unexpected: the poll counts as an error."""
    store, clock, http, poller = poller_env
    url = f"{FS}/v2/users/batch/odd"
    http.queue(url, HttpAnswer(200, b'{"job": {"status": "PROCESSING"}}'))

    def explode(body: Any) -> Any:
        raise KeyError("surprise")

    poller._sources["fs"].provider.parse = explode  # type: ignore[method-assign]
    watch, _ = await store.register(WatchKey("fs", "users", "odd"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    stored = await store.get_watch(watch.id)
    assert stored and stored.errors == 1 and stored.last_error == "unexpected answer: KeyError"
    errors = poller._metrics.registry.get_sample_value(
        "bridge_polls_total", {"source": "fs", "result": "error"}
    )
    assert errors == 1


async def test_deep_error_bodies_are_described_safely(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A 500 whose body is nested 5,000 deep is a transient error, not a crash."""
    store, clock, http, poller = poller_env
    url = f"{FS}/v2/users/batch/deep500"
    http.queue(url, HttpAnswer(500, b"[" * 5000 + b"]" * 5000))
    watch, _ = await store.register(WatchKey("fs", "users", "deep500"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    stored = await store.get_watch(watch.id)
    assert stored and stored.errors == 1 and (stored.last_error or "").startswith("500")


async def test_a_reserved_slot_is_not_used_once_the_source_is_paused(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A poll reserved for later finds a 429 pause set meanwhile: no request, rescheduled."""
    from dataclasses import replace

    store, clock, http, poller = poller_env
    url = f"{FS}/v2/users/batch/later"
    http.queue(url, HttpAnswer(200, json.dumps(fs_body("PROCESSING")).encode()))
    watch, _ = await store.register(WatchKey("fs", "users", "later"), clock.now())
    [claimed] = await store.claim(clock.now(), 60, 10)
    await store.sources.pause("fs", 30)
    verdict = await poller.poll(replace(claimed, delay_s=0.001))
    assert verdict == "ok" and http.count(url) == 0
    stored = await store.get_watch(watch.id)
    assert stored and stored.polls == 0 and (stored.next_poll_at or 0) >= clock.now() + 29


async def test_the_retry_after_a_401_takes_its_own_slot(poller_env) -> None:  # type: ignore[no-untyped-def]
    """The poll retried with a fresh token asks the source's limiter first."""
    store, clock, http, poller = poller_env
    job_url = talkdesk_answering_401_once(poller, http, 100.0, "t")
    asked = record_acquires(store)
    await store.register(WatchKey("td", "users", "t"), clock.now())
    await run_due(store, clock, poller)
    # each token request asks the token budget; the retry, once it has its token, the
    # source's own limiter
    assert http.count(job_url) == 2 and asked == ["td:token", "td:token", "td"]


async def test_finished_jobs_feed_the_scheduling_histograms(poller_env) -> None:  # type: ignore[no-untyped-def]
    """Requests per job and time-to-notice (from the upstream's finished time)."""
    from datetime import UTC, datetime

    store, clock, http, poller = poller_env
    url = f"{FS}/v2/users/batch/h"
    done = fs_body("COMPLETED", 3)
    finished = datetime.fromtimestamp(clock.now() + 1.5, UTC).isoformat().replace("+00:00", "Z")
    done["job"]["finished"] = finished
    http.queue(url, HttpAnswer(200, json.dumps(fs_body("PROCESSING")).encode()))
    await store.register(WatchKey("fs", "users", "h"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    http.script[url] = [HttpAnswer(200, json.dumps(done).encode())]
    clock.advance(2)
    assert await run_due(store, clock, poller) == ["terminal"]
    registry = poller._metrics.registry
    assert registry.get_sample_value("bridge_requests_per_job_sum", {"source": "fs"}) == 2
    lag = registry.get_sample_value("bridge_time_to_notice_seconds_sum", {"source": "fs"})
    assert lag == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("rate", [100.0, 0.0])
async def test_a_401_retry_during_a_pause_is_not_sent(poller_env, rate: float) -> None:  # type: ignore[no-untyped-def]
    """The retry after a 401 finds the source paused: neither the token request nor the
    retry goes out, with or without a rate limit; the request that did go out counts as
    a poll; rescheduled after the pause as "paused"."""
    store, clock, http, poller = poller_env
    job_url = talkdesk_answering_401_once(poller, http, rate, "q")
    await poller._sources["td"].provider.auth_headers()  # a token in the cache already
    watch, _ = await store.register(WatchKey("td", "users", "q"), clock.now())
    [claimed] = await store.claim(clock.now(), 60, 10)
    await store.sources.pause("td", 120)
    assert await poller.poll(claimed) == "ok"
    assert http.count(job_url) == 1 and http.count(TOKEN_URL) == 1  # nothing after the 401
    stored = await store.get_watch(watch.id)
    assert stored and stored.poll_reason == "paused" and stored.polls == 1
    assert (stored.next_poll_at or 0) >= clock.now() + 119


async def test_a_retry_without_a_slot_soon_is_rate_limited(poller_env) -> None:  # type: ignore[no-untyped-def]
    """The retry's source has no slot within the horizon: not sent, "rate_limited"."""
    store, clock, http, poller = poller_env
    job_url = talkdesk_answering_401_once(poller, http, 0.1, "r")
    watch, _ = await store.register(WatchKey("td", "users", "r"), clock.now())
    await store.sources.acquire("td", 0.1, 1, 1.0)  # the only slot of the next 10 s is taken
    [claimed] = await store.claim(clock.now(), 60, 10)
    assert await poller.poll(claimed) == "ok"
    assert http.count(job_url) == 1
    stored = await store.get_watch(watch.id)
    assert stored and stored.poll_reason == "rate_limited" and stored.polls == 1


async def test_a_request_starting_late_takes_a_fresh_slot(poller_env) -> None:  # type: ignore[no-untyped-def]
    """Claimed long before a worker got to it (a busy pool): a fresh slot first, so late
    requests do not go out back to back; one on time does not ask again."""
    import time as clock_time
    from dataclasses import replace

    from bridge.poll.poller import PolledSource

    store, clock, http, poller = poller_env
    fs = poller._sources["fs"]
    poller._sources["fs"] = PolledSource("fs", fs.provider, rate_limit=10.0, burst=1)
    asked = record_acquires(store)
    for job in ("late", "on-time"):
        url = f"{FS}/v2/users/batch/{job}"
        http.queue(url, HttpAnswer(200, json.dumps(fs_body("PROCESSING")).encode()))
        await store.register(WatchKey("fs", "users", job), clock.now())
    claimed = {c.watch.job_id: c for c in await store.claim(clock.now(), 60, 10)}
    now = clock_time.monotonic()
    assert await poller.poll(replace(claimed["late"], slot_at=now - 5)) == "ok"
    assert asked == ["fs"]
    assert await poller.poll(replace(claimed["on-time"], slot_at=now)) == "ok"
    assert asked == ["fs"]


async def test_a_request_late_within_its_burst_keeps_its_slot(
    poller_env,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """At 10/s with a burst of 5 a request may go out 0.2 s after its slot (the limiter
    keeps 3 of the 5 for itself): 0.15 s late keeps the slot, 0.3 s late takes a fresh
    one. A strict one-interval allowance cost busy sources half their budget."""
    from dataclasses import replace

    store, clock, _, poller = poller_env
    mono = FakeMonotonic(monkeypatch)
    jobs = ["a-bit-late", "too-late", "late-after-the-pause-check"]
    asked = await limited_fs_jobs(poller_env, 10.0, 5, jobs)
    claimed = {c.watch.job_id: c for c in await store.claim(clock.now(), 60, 10)}
    assert await poller.poll(replace(claimed["a-bit-late"], slot_at=mono.now - 0.15)) == "ok"
    assert asked == []
    assert await poller.poll(replace(claimed["too-late"], slot_at=mono.now - 0.3)) == "ok"
    assert asked == ["fs"]
    # reserved ahead: the pause is checked first, and that check itself took 30 ms
    pause_check = store.sources.pause_left

    async def slow_pause_check(source: str) -> float:
        mono.now += 0.03
        return await pause_check(source)  # type: ignore[no-any-return]

    store.sources.pause_left = slow_pause_check
    on_the_edge = replace(
        claimed["late-after-the-pause-check"], delay_s=0.1, slot_at=mono.now - 0.19
    )
    assert await poller.poll(on_the_edge) == "ok"
    assert asked == ["fs", "fs"]


async def test_polls_that_waited_for_a_token_take_fresh_slots(
    poller_env,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """Two polls find no token and wait for one (a slow token endpoint): once it comes
    they are late for their slots, so each takes a fresh one of the source's limiter
    rather than going out together over the rate limit."""
    import time
    import types

    from bridge.poll import poller as poller_module
    from bridge.poll.poller import PolledSource

    store, clock, http, poller = poller_env
    td = poller._sources["td"]
    poller._sources["td"] = PolledSource("td", td.provider, rate_limit=5.0, burst=1)
    real_request = http.request
    monotonic = [time.monotonic()]  # the pool's clock, moved by hand
    fake_time = types.SimpleNamespace(
        monotonic=lambda: monotonic[0], perf_counter=time.perf_counter
    )
    monkeypatch.setattr(poller_module, "time", fake_time)

    async def slow_tokens(method: str, url: str, **kw: Any) -> HttpAnswer:
        if url == TOKEN_URL:
            monotonic[0] += 0.5  # slower than the slots reserved (0.2 s apart)
        return await real_request(method, url, **kw)

    http.request = slow_tokens
    http.queue(TOKEN_URL, HttpAnswer(200, b'{"access_token": "t", "expires_in": 3600}'))
    for job in ("a", "b"):
        http.queue(
            f"http://td.test/bulk-imports/users/{job}", HttpAnswer(200, b'{"status": "QUEUED"}')
        )
        await store.register(WatchKey("td", "users", job), clock.now())
    asked = record_acquires(store)
    claimed = await poller._claim(10)  # as the worker pool claims: slots of the limiter
    assert len(claimed) == 2
    await asyncio.gather(*(poller.poll(c) for c in claimed))
    assert asked.count("td") == 2  # a fresh slot each, after the token


async def test_a_deep_token_answer_is_a_malformed_answer(poller_env) -> None:  # type: ignore[no-untyped-def]
    """The token endpoint answers 200 with a body nested 200,000 deep: read by the same
    bounded parser as every upstream answer, it is a malformed answer, not a crash of
    the parser (RecursionError) logged as something nobody foresaw."""
    store, clock, http, poller = poller_env
    http.queue(TOKEN_URL, HttpAnswer(200, b"[" * 200_000 + b"]" * 200_000))
    watch, _ = await store.register(WatchKey("td", "users", "deep-token"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    stored = await store.get_watch(watch.id)
    assert stored and stored.errors == 1
    assert stored.last_error == "token endpoint sent a malformed answer"


async def test_a_hanging_upstream_holds_only_its_share_of_the_workers(prefix: str) -> None:
    """FullStory never answers and has more running jobs than the poller has workers:
    it holds all but the workers kept for Talkdesk, whose jobs are polled meanwhile."""

    import fakeredis

    from bridge.clock import FakeClock
    from bridge.metrics import Metrics
    from bridge.poll.poller import PolledSource, Poller
    from bridge.providers.fullstory import FullStoryProvider
    from bridge.settings import PollSettings
    from bridge.store.redis import RedisStore
    from tests.unit.helpers import ScriptedHttp, ok, td_body, td_provider

    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    store, clock = RedisStore(client, prefix), FakeClock()
    http = ScriptedHttp()
    hang, fs_waiting = asyncio.Event(), []
    scripted = http.request

    async def request(method: str, url: str, **kw: Any) -> HttpAnswer:
        if url.startswith(FS):
            fs_waiting.append(url)
            await hang.wait()
        return await scripted(method, url, **kw)

    http.request = request  # type: ignore[method-assign]
    http.queue(TOKEN_URL, HttpAnswer(200, b'{"access_token": "t", "expires_in": 3600}'))
    settings = PollSettings(concurrency=4, lease=60)
    told, events = asyncio.Event(), []  # FullStory never answers: every event is Talkdesk's

    def written() -> None:
        events.append(1)
        if len(events) == 2:
            told.set()

    poller = Poller(
        store=store, http=http, clock=clock, metrics=Metrics(), settings=settings,
        on_event=written,
        sources={"fs": PolledSource("fs", FullStoryProvider("key", FS), rate_limit=0, burst=1),
                 "td": PolledSource("td", td_provider(store, clock, http), rate_limit=0, burst=1)},
    )  # fmt: skip
    for i in range(10):
        http.queue(f"{FS}/v2/users/batch/fs{i}", ok(fs_body("COMPLETED")))
        await store.register(WatchKey("fs", "users", f"fs{i}"), clock.now())
    clock.advance(1)
    for i in range(2):
        http.queue(f"http://td.test/bulk-imports/users/td{i}", ok(td_body("COMPLETED", 100)))
        await store.register(WatchKey("td", "users", f"td{i}"), clock.now())
    poller.start()
    try:
        await asyncio.wait_for(told.wait(), 10)
        stored, _ = await store.events.list_events()
        assert sorted(e.data["job_id"] for e in stored) == ["td0", "td1"]
        assert len(fs_waiting) == 3  # FullStory holds all but Talkdesk's reserve
    finally:
        hang.set()
        await poller.stop(1)
        await client.aclose()


@pytest.mark.parametrize(
    ("concurrency", "configured", "held", "own", "shared"),
    [
        (64, 0, {}, {"a": 8, "b": 8, "c": 8, "d": 8}, 32),  # alone, a source may use 40
        (64, 0, {"a": 40}, {"a": 0, "b": 8, "c": 8, "d": 8}, 0),  # a hangs: the rest keep 8
        (64, 0, {"c": 3}, {"a": 8, "b": 8, "c": 5, "d": 8}, 32),
        (32, 0, {}, {"a": 8, "b": 8}, 16),
        (4, 0, {"a": 3}, {"a": 0, "b": 1}, 0),
    ],
)
def test_worker_room(concurrency: int, configured: int, held: dict[str, int],
                     own: dict[str, int], shared: int) -> None:  # fmt: skip
    """Every source keeps half a fair share of the workers for itself; the rest is
    shared by whoever has work."""
    from bridge.poll.poller import worker_room

    room = worker_room(concurrency, configured, list(own), held)
    assert (room.own, room.shared, room.most) == (own, shared, None)
    capped = worker_room(64, 10, ["a", "b"], {"a": 4})
    assert capped.most == {"a": 6, "b": 10}


@settings(max_examples=200, deadline=None)
@given(depth=st.integers(0, MAX_JSON_DEPTH + 20), strings=st.integers(0, 80))
def test_decode_json_cuts_what_bounded_depth_cuts(depth: int, strings: int) -> None:
    """The walk is skipped only for bodies that cannot be too deep: brackets inside
    strings count too, so the answer is always the walked one."""
    value: Any = {"s": "[" * strings}
    for _ in range(depth):
        value = {"a": [value]} if depth % 2 else [value]
    body = json.dumps(value).encode()
    assert decode_json(body) == bounded_depth(json.loads(body), MAX_JSON_DEPTH)


async def test_a_slow_claim_does_not_make_its_slots_late(
    poller_env,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """A claim that takes 20 ms before its script (a read, earlier rounds): its slots
    count from the script that granted them, so at 100/s with a burst of 2 (10 ms of
    lateness allowed) a poll started at once keeps its slot."""
    store, _, _, poller = poller_env
    mono = FakeMonotonic(monkeypatch)
    asked = await limited_fs_jobs(poller_env, 100.0, 2, ["slow-claim"])
    poller._rate_limits["fs"] = (100.0, 1)
    real_claim = store.claim

    async def slow_claim(*args: Any, **kwargs: Any) -> Any:
        mono.now += 0.02
        return await real_claim(*args, **kwargs)

    store.claim = slow_claim
    [claimed] = await poller._claim(4)
    assert await poller.poll(claimed) == "ok"
    assert asked == []


@settings(max_examples=200, deadline=None)
@given(
    concurrency=st.integers(1, 300),
    configured=st.integers(0, 20),
    count=st.integers(1, 40),
    held=st.dictionaries(st.integers(0, 50), st.integers(0, 60), max_size=12),
    taken=st.dictionaries(st.integers(0, 45), st.integers(0, 30), max_size=12),
)
def test_the_worker_room_computed_when_asked_is_the_whole_table(
    concurrency: int, configured: int, count: int, held: dict[int, int], taken: dict[int, int]
) -> None:
    """worker_room answers per source when asked (a claim among thousands asks of a few):
    the same as the table of every source, before and after a round takes some; held
    sources no longer configured count for nothing."""
    from collections import Counter

    from bridge.poll.poller import reserve_per_source, worker_room

    sources = [f"s{i}" for i in range(count)]
    holds = {f"s{i}": n for i, n in held.items()}
    reserve = reserve_per_source(concurrency, count)
    own = {s: max(0, reserve - holds.get(s, 0)) for s in sources}
    free = concurrency - sum(holds.get(s, 0) for s in sources)
    most = {s: max(0, configured - holds.get(s, 0)) for s in sources} if configured else None
    room = worker_room(concurrency, configured, dict.fromkeys(sources), holds)
    assert (dict(room.own), room.shared) == (own, max(0, free - sum(own.values())))
    assert (None if room.most is None else dict(room.most)) == most
    took = Counter({f"s{i}": n for i, n in taken.items()})
    spilled = sum(max(0, n - own[s]) for s, n in took.items() if s in own)
    after = room.after(took)
    assert dict(after.own) == {s: max(0, n - took[s]) for s, n in own.items()}
    assert after.shared == max(0, room.shared - spilled)
    if most is not None and after.most is not None:
        assert dict(after.most) == {s: max(0, n - took[s]) for s, n in most.items()}
