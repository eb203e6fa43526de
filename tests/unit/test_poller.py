"""The poller against scripted upstream answers, a fake clock and fakeredis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest

from bridge.clock import FakeClock
from bridge.metrics import Metrics
from bridge.model import Outcome, WatchKey, WatchState
from bridge.poll.duration_policy import bucket_of
from bridge.poll.poller import PolledSource, Poller
from bridge.providers.http import HttpAnswer
from bridge.settings import PollSettings
from bridge.store.durations import DurationStore
from bridge.store.redis import RedisStore
from tests.unit.helpers import (
    FS,
    TD,
    ScriptedHttp,
    fs_body,
    ok,
    run_due,
    td_body,
    td_provider,
    twin_of,
)


async def test_fullstory_job_to_completion(poller_env) -> None:  # type: ignore[no-untyped-def]
    """Running, then COMPLETED: one import.completed event and no poll afterwards."""
    store, clock, http, poller = poller_env
    url = f"{FS}/v2/users/batch/j1"
    http.queue(url, ok(fs_body("PROCESSING")), ok(fs_body("COMPLETED", 42)))
    watch, _ = await store.register(WatchKey("fs", "users", "j1"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    assert await run_due(store, clock, poller) == []  # not due yet
    clock.advance(2)
    assert await run_due(store, clock, poller) == ["terminal"]
    clock.advance(10_000)
    assert await run_due(store, clock, poller) == []
    assert http.count(url) == 2
    stored = await store.get_watch(watch.id)
    assert stored and stored.state is WatchState.TERMINAL and stored.polls == 2
    [event], _ = await store.events.list_events(watch_id=watch.id)
    assert event.type == "import.completed"
    assert event.data["previous_status"] == "PROCESSING"
    assert event.data["counts"]["succeeded"] == 42
    assert event.data["job"]["job"]["status"] == "COMPLETED"
    # the console's trends count every request that went out, and the job's end
    tally = poller._metrics.tally.take()
    assert tally["sent:fs"] == http.count(url) == 2


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("COMPLETED", Outcome.COMPLETED),
        ("COMPLETED_WITH_ERRORS", Outcome.COMPLETED_WITH_ERRORS),
        ("FAILED", Outcome.FAILED),
        ("CANCELED", Outcome.CANCELED),
    ],
)
async def test_talkdesk_terminal_statuses(poller_env, status: str, outcome: Outcome) -> None:  # type: ignore[no-untyped-def]
    """Every Talkdesk terminal status yields its own event type."""
    store, clock, http, poller = poller_env
    http.queue(
        f"{TD}/oauth/token", ok({"access_token": "a", "expires_in": 3600, "token_type": "Bearer"})
    )
    http.queue(f"{TD}/bulk-imports/users/t1", ok(td_body(status, 100)))
    watch, _ = await store.register(WatchKey("td", "users", "t1"), clock.now())
    assert await run_due(store, clock, poller) == ["terminal"]
    [event], _ = await store.events.list_events(watch_id=watch.id)
    assert event.type == outcome.event_type
    _, _, headers = http.requests[-1]
    assert headers["Authorization"] == "Bearer a" and headers["Accept"] == "application/json"


async def test_not_found_after_three_polls(poller_env) -> None:  # type: ignore[no-untyped-def]
    """Three 404s in a row make import.not_found; fewer do not."""
    store, clock, http, poller = poller_env
    http.queue(f"{FS}/v2/users/batch/gone", HttpAnswer(404, b'{"code":"resource_not_found"}'))
    watch, _ = await store.register(WatchKey("fs", "users", "gone"), clock.now())
    verdicts = []
    for _ in range(3):
        verdicts += await run_due(store, clock, poller)
        clock.advance(1000)
    assert verdicts == ["ok", "ok", "terminal"]
    stored = await store.get_watch(watch.id)
    assert stored and stored.state is WatchState.NOT_FOUND
    [event], _ = await store.events.list_events(watch_id=watch.id)
    assert event.type == "import.not_found"


async def test_max_age_expires_without_polling(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A watch older than max_age becomes import.expired without another request."""
    store, clock, http, poller = poller_env
    watch, _ = await store.register(WatchKey("fs", "users", "slow"), clock.now())
    clock.advance(3600)
    assert await run_due(store, clock, poller) == ["terminal"]
    assert http.requests == []
    [event], _ = await store.events.list_events(watch_id=watch.id)
    assert event.type == "import.expired"


async def test_transient_errors_back_off_then_recover(poller_env) -> None:  # type: ignore[no-untyped-def]
    """5xx and garbage back off per job; a good answer resets the error count."""
    store, clock, http, poller = poller_env
    url = f"{FS}/v2/users/batch/flaky"
    http.queue(url, HttpAnswer(500, b"oops"), HttpAnswer(200, b"<html>"), ok(fs_body("PROCESSING")))
    watch, _ = await store.register(WatchKey("fs", "users", "flaky"), clock.now())
    await run_due(store, clock, poller)
    first = await store.get_watch(watch.id)
    assert first and first.errors == 1 and "500" in (first.last_error or "")
    clock.advance(2)
    await run_due(store, clock, poller)
    second = await store.get_watch(watch.id)
    assert second and second.errors == 2 and "not JSON" in (second.last_error or "")
    assert second.next_poll_at and second.next_poll_at - clock.now() >= 2
    clock.advance(10)
    await run_due(store, clock, poller)
    third = await store.get_watch(watch.id)
    assert third and third.errors == 0 and third.last_error is None and third.status == "PROCESSING"


async def test_429_pauses_the_whole_source(poller_env) -> None:  # type: ignore[no-untyped-def]
    """After a 429 no job of that source is requested until Retry-After has passed."""
    store, clock, http, poller = poller_env
    http.queue(f"{FS}/v2/users/batch/a", HttpAnswer(429, b"", {"Retry-After": "30"}))
    http.queue(f"{FS}/v2/users/batch/b", ok(fs_body("PROCESSING")))
    await store.register(WatchKey("fs", "users", "a"), clock.now())
    await run_due(store, clock, poller)
    await store.register(WatchKey("fs", "users", "b"), clock.now())
    await run_due(store, clock, poller)
    assert http.count(f"{FS}/v2/users/batch/b") == 0
    assert 29 < await store.sources.pause_left("fs") <= 30


async def test_talkdesk_revoked_token_refreshed_once(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A 401 drops the shared token, fetches a new one and retries the poll once."""
    store, clock, http, poller = poller_env
    token_url, job_url = f"{TD}/oauth/token", f"{TD}/bulk-imports/users/t"
    http.queue(
        token_url,
        ok({"access_token": "old", "expires_in": 3600}),
        ok({"access_token": "new", "expires_in": 3600}),
    )
    http.queue(
        job_url,
        ok(td_body("IN_PROGRESS", 10)),
        HttpAnswer(401, b"{}"),
        ok(td_body("IN_PROGRESS", 20)),
    )
    await store.register(WatchKey("td", "users", "t"), clock.now())
    await run_due(store, clock, poller)
    clock.advance(300)
    await run_due(store, clock, poller)
    assert http.count(token_url) == 2
    auths = [h["Authorization"] for _, u, h in http.requests if u == job_url]
    assert auths == ["Bearer old", "Bearer old", "Bearer new"]
    assert (await store.sources.get_health("td")).healthy


async def test_persistent_401_marks_source_unhealthy(poller_env) -> None:  # type: ignore[no-untyped-def]
    """401 after a refresh marks the source unhealthy and keeps the watch."""
    store, clock, http, poller = poller_env
    http.queue(f"{TD}/oauth/token", ok({"access_token": "x", "expires_in": 3600}))
    http.queue(f"{TD}/bulk-imports/users/t", HttpAnswer(401, b'{"code":"1001","message":"no"}'))
    watch, _ = await store.register(WatchKey("td", "users", "t"), clock.now())
    await run_due(store, clock, poller)
    health = await store.sources.get_health("td")
    assert not health.healthy and "401" in (health.reason or "")
    stored = await store.get_watch(watch.id)
    assert stored and stored.state is WatchState.WATCHING


async def test_progress_estimates_completion(poller_env) -> None:  # type: ignore[no-untyped-def]
    """With Talkdesk counts, the next poll closes in on the estimated completion, but
    never later than the lag target allows for a job of the expected length; the first
    change of the count alone is no estimate."""
    store, clock, http, poller = poller_env
    http.queue(f"{TD}/oauth/token", ok({"access_token": "a", "expires_in": 3600}))
    url = f"{TD}/bulk-imports/users/p"
    http.queue(
        url,
        ok(td_body("IN_PROGRESS", 10, 1000)),
        ok(td_body("IN_PROGRESS", 30, 1000)),
        ok(td_body("IN_PROGRESS", 50, 1000)),
        ok(td_body("IN_PROGRESS", 990, 1000)),
    )
    watch, _ = await store.register(WatchKey("td", "users", "p"), clock.now())
    await run_due(store, clock, poller)
    clock.advance(2)
    await run_due(store, clock, poller)
    stored = await store.get_watch(watch.id)
    assert stored and stored.poll_reason == "age"
    clock.advance(2)
    await run_due(store, clock, poller)  # 10 records/s: 950 left, 95 s away
    stored = await store.get_watch(watch.id)
    assert stored and stored.next_poll_at is not None
    assert stored.next_poll_at - clock.now() == pytest.approx(0.1 * (4 + 95))  # capped
    assert stored.poll_reason == "age"  # a share of 95 s is further than the lag target
    clock.advance(stored.next_poll_at - clock.now())
    await run_due(store, clock, poller)  # 940 more in 9.9 s: 10 left, about 0.1 s
    stored = await store.get_watch(watch.id)
    assert stored and stored.poll_reason == "eta" and stored.next_poll_at is not None
    assert stored.next_poll_at - clock.now() == pytest.approx(2)  # min_interval


async def test_rate_limit_defers_without_requesting(poller_env) -> None:  # type: ignore[no-untyped-def]
    """When the shared limiter says wait, the poll is put off and no request is sent."""
    store, clock, http, poller = poller_env
    poller._rate_limits["fs"] = (0.01, 1)
    http.queue(f"{FS}/v2/users/batch/x", ok(fs_body("PROCESSING")))
    http.queue(f"{FS}/v2/users/batch/y", ok(fs_body("PROCESSING")))
    await store.register(WatchKey("fs", "users", "x"), clock.now())
    await store.register(WatchKey("fs", "users", "y"), clock.now())
    await run_due(store, clock, poller)
    assert len(http.requests) == 1
    clock.advance(50)
    await run_due(store, clock, poller)
    assert len(http.requests) == 1  # 1 request per 100 s


async def test_unconfigured_source_keeps_watch(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A watch whose source left the config is kept and looked at again later."""
    store, clock, _, poller = poller_env
    watch, _ = await store.register(WatchKey("old", "users", "z"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    stored = await store.get_watch(watch.id)
    assert (
        stored
        and stored.state is WatchState.WATCHING
        and "not configured" in (stored.last_error or "")
    )


async def test_learned_durations_crowd_polls_where_jobs_end(poller_env) -> None:  # type: ignore[no-untyped-def]
    """FullStory jobs of this kind take about 5 minutes: near 5 minutes the next poll is
    much sooner than the lag target's ("learned"); a kind without history keeps the lag
    target ("age"), and so does a job older than nearly all jobs seen."""
    store, clock, http, poller = poller_env
    durations: DurationStore = poller._durations
    for i in range(100):
        await durations.record("fs", "users", 290 + i / 10)
    start = clock.now()
    http.queue(f"{FS}/v2/users/batch/a", *[ok(fs_body("PROCESSING"))] * 3)
    http.queue(f"{FS}/v2/events/batch/b", ok(fs_body("PROCESSING")))
    a, _ = await store.register(WatchKey("fs", "users", "a"), start)
    b, _ = await store.register(WatchKey("fs", "events", "b"), start)
    clock.advance(280)
    await run_due(store, clock, poller)
    near, other = await store.get_watch(a.id), await store.get_watch(b.id)
    assert near and near.poll_reason == "learned" and near.interval_s is not None
    assert near.interval_s < 0.5 * 0.1 * 280
    assert other and other.poll_reason == "age"
    assert other.interval_s == pytest.approx(0.1 * 280)
    clock.advance(1000)
    await run_due(store, clock, poller)
    late = await store.get_watch(a.id)
    assert late and late.poll_reason == "age"


async def test_a_finished_job_teaches_its_duration(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A job seen running, then finished: its duration since registration (the
    upstream's finished time) is learned once; a job already finished at its first
    answer (even after failed polls) teaches nothing."""
    store, clock, http, poller = poller_env
    start = clock.now()
    finished = datetime.fromtimestamp(start + 100, UTC).isoformat().replace("+00:00", "Z")
    done = fs_body("COMPLETED")
    done["job"]["finished"] = finished
    http.queue(f"{FS}/v2/users/batch/a", ok(fs_body("PROCESSING")), ok(done))
    http.queue(f"{FS}/v2/users/batch/b", ok(fs_body("COMPLETED")))
    http.queue(f"{FS}/v2/users/batch/c", HttpAnswer(500, b"{}"), ok(fs_body("COMPLETED")))
    for job in "abc":
        await store.register(WatchKey("fs", "users", job), start)
    await run_due(store, clock, poller)
    clock.advance(110)
    await run_due(store, clock, poller)
    learned = await store.client.hgetall(store.keys.durations("fs", "users", "current"))
    assert learned == {"n": "1", str(bucket_of(100)): "1"}


async def test_a_source_event_once_per_change_fleet_wide(poller_env) -> None:  # type: ignore[no-untyped-def]
    """Two pollers (replicas) both see the source's key refused: one source.unhealthy
    event in the outbox; both see it work again: one source.recovered."""
    store, clock, _http, poller = poller_env
    twin = twin_of(poller)
    await poller._set_health("fs", False, "401 from the upstream")
    await twin._set_health("fs", False, "401 from the upstream")
    clock.advance(10)
    await twin._set_health("fs", True, None)
    await poller._set_health("fs", True, None)
    types = [entry["type"] for entry in await store.events.read_outbox()]
    assert types == ["source.unhealthy", "source.recovered"]
    event = await store.events.get_event((await store.events.read_outbox())[0]["event_id"])
    assert event is not None
    assert event.data == {
        "source": "fs",
        "provider": "fullstory",
        "reason": "401 from the upstream",
    }


async def test_one_forbidden_job_does_not_flip_the_source(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A job the key may not read (403: another account's job) beside jobs read fine:
    the job backs off with its error, the source stays healthy, no source.* event."""
    store, clock, http, poller = poller_env
    http.queue(f"{FS}/v2/users/batch/foreign", HttpAnswer(403, b'{"message":"forbidden"}'))
    for job in ("mine1", "mine2"):
        http.queue(f"{FS}/v2/users/batch/{job}", ok(fs_body("PROCESSING")))
    foreign, _ = await store.register(WatchKey("fs", "users", "foreign"), clock.now())
    for job in ("mine1", "mine2"):
        await store.register(WatchKey("fs", "users", job), clock.now())
    for _ in range(40):
        await run_due(store, clock, poller)
        clock.advance(5)
    assert http.count(f"{FS}/v2/users/batch/foreign") >= 5
    assert (await store.sources.get_health("fs")).healthy
    assert [e["type"] for e in await store.events.read_outbox()] == []
    stored = await store.get_watch(foreign.id)
    assert stored is not None and "403" in (stored.last_error or "")


async def test_forbidden_for_every_job_marks_the_source(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A key refused with 403 for three different jobs and none read: unhealthy."""
    store, clock, http, poller = poller_env
    for job in ("x1", "x2", "x3"):
        http.queue(f"{FS}/v2/users/batch/{job}", HttpAnswer(403, b'{"message":"forbidden"}'))
        await store.register(WatchKey("fs", "users", job), clock.now())
    await run_due(store, clock, poller)
    health = await store.sources.get_health("fs")
    assert not health.healthy and "403" in (health.reason or "")


async def test_a_recovery_is_told_after_another_replica_marked_the_source(poller_env) -> None:  # type: ignore[no-untyped-def]
    """This replica last wrote 'healthy'; another marked the source unhealthy since. Once
    this one reads the fleet's health (as the gauges do every 10 s), its next good answer
    writes source.recovered: the fleet never stays unhealthy with the source working."""
    store, clock, http, poller = poller_env
    twin = twin_of(poller)
    await poller._set_health("fs", False, "401")
    await poller._set_health("fs", True, None)
    await twin._set_health("fs", False, "401 again")
    http.queue(f"{FS}/v2/users/batch/j", ok(fs_body("PROCESSING")))
    await store.register(WatchKey("fs", "users", "j"), clock.now())
    poller.fleet_health("fs", (await store.sources.get_health("fs")).healthy)
    await run_due(store, clock, poller)
    assert (await store.sources.get_health("fs")).healthy
    types = [e["type"] for e in await store.events.read_outbox()]
    assert types[-1] == "source.recovered"


async def test_a_failed_health_write_is_tried_again(poller_env) -> None:  # type: ignore[no-untyped-def]
    """Redis refused the write of 'unhealthy': this process does not believe it was
    written, so the next refusal writes it (and its source.unhealthy event)."""
    store, _clock, _http, poller = poller_env
    real = store.sources.set_health
    calls = 0

    async def flaky(*args: Any, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("Redis went away")
        return await real(*args, **kwargs)

    store.sources.set_health = flaky
    with pytest.raises(ConnectionError):
        await poller._set_health("fs", False, "401")
    await poller._set_health("fs", False, "401")
    assert not (await store.sources.get_health("fs")).healthy
    assert [e["type"] for e in await store.events.read_outbox()] == ["source.unhealthy"]


def with_errors_sample(poller: Poller) -> None:
    poller._sources["fs"].provider.wants_failure_details = True  # type: ignore[attr-defined]


async def the_event(store: RedisStore) -> dict[str, Any]:
    [entry] = await store.events.read_outbox()
    event = await store.events.get_event(entry["event_id"])
    assert event is not None
    return {"type": event.type, **event.data}


async def test_errors_sample_keeps_the_previous_status_and_beats_max_age(poller_env) -> None:  # type: ignore[no-untyped-def]
    """Waiting through the errors page's 202 past max_age: the event is import.failed
    (the job ended; it did not expire), its previous_status is the status before
    FAILED, and it carries the page."""
    store, clock, http, poller = poller_env
    with_errors_sample(poller)
    url = f"{FS}/v2/users/batch/f"
    failed = {**fs_body("FAILED"), "errors": 1}
    http.queue(url, ok(fs_body("PROCESSING")), ok(failed))
    http.queue(f"{url}/errors", HttpAnswer(202, b"{}"), ok({"results": [{"code": "bad_row"}]}))
    await store.register(WatchKey("fs", "users", "f"), clock.now())
    await run_due(store, clock, poller)  # PROCESSING
    clock.advance(3590)
    await run_due(store, clock, poller)  # FAILED, errors not ready
    assert await store.events.read_outbox() == []
    clock.advance(20)  # past max_age (3600 s)
    await run_due(store, clock, poller)
    event = await the_event(store)
    assert event["type"] == "import.failed"
    assert event["previous_status"] == "PROCESSING"
    assert event["errors_sample"]["items"] == [{"code": "bad_row"}]


async def test_a_429_on_the_errors_page_pauses_the_source(poller_env) -> None:  # type: ignore[no-untyped-def]
    """The errors page answers 429: the whole source waits its Retry-After, as for a
    status poll."""
    store, clock, http, poller = poller_env
    with_errors_sample(poller)
    url = f"{FS}/v2/users/batch/g"
    http.queue(url, ok({**fs_body("FAILED"), "errors": 1}))
    http.queue(f"{url}/errors", HttpAnswer(429, b"{}", {"Retry-After": "40"}))
    await store.register(WatchKey("fs", "users", "g"), clock.now())
    await run_due(store, clock, poller)
    assert await store.sources.pause_left("fs") > 30


async def test_a_poll_ends_within_its_lease(prefix: str) -> None:
    """An upstream that never answers (here the token endpoint): the poll gives up after
    3/4 of the lease, counts an error and backs off, so no other replica takes the watch
    back while it still runs."""
    import asyncio

    class Hanging(ScriptedHttp):
        async def request(self, method: str, url: str, **kw: Any) -> HttpAnswer:
            await asyncio.Event().wait()  # never answers
            raise AssertionError("unreachable")

    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    store, clock, http = RedisStore(client, prefix), FakeClock(), Hanging()
    td = td_provider(store, clock, http)
    settings = PollSettings(min_interval=2, max_interval=300, lease=0.4, request_timeout=0.2)
    poller = Poller(
        store=store, http=http, sources={"td": PolledSource("td", td, 0, 1)},
        settings=settings, clock=clock, metrics=Metrics(), rand=lambda: 0.5,
    )  # fmt: skip
    watch, _ = await store.register(WatchKey("td", "users", "slow"), clock.now())
    [claimed] = await store.claim(clock.now(), 0.4, 1)
    assert await poller.poll(claimed) == "ok"
    stored = await store.get_watch(watch.id)
    assert stored is not None and stored.errors == 1 and "0.3 s" in (stored.last_error or "")
    await client.aclose()


async def test_a_failed_job_whose_polls_then_fail_still_ends(poller_env) -> None:  # type: ignore[no-untyped-def]
    """Seen FAILED, its errors page not ready, then every poll of the job fails (500):
    past max_age and the errors wait, the watch ends (expired), never left open."""
    store, clock, http, poller = poller_env
    with_errors_sample(poller)
    url = f"{FS}/v2/users/batch/stuck"
    http.queue(url, ok({**fs_body("FAILED"), "errors": 1}), HttpAnswer(500, b"{}"))
    http.queue(f"{url}/errors", HttpAnswer(202, b"{}"))
    watch, _ = await store.register(WatchKey("fs", "users", "stuck"), clock.now())
    clock.advance(3590)
    await run_due(store, clock, poller)  # FAILED, errors not ready: waiting
    for _ in range(60):
        clock.advance(10)
        await run_due(store, clock, poller)
    stored = await store.get_watch(watch.id)
    assert stored is not None and stored.state is WatchState.EXPIRED


async def test_a_huge_job_body_is_not_carried_by_its_event(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A 900 KB job answer: the event (and so every webhook) carries a note of its size
    instead of the body, and the refusal is logged and counted."""
    from structlog.testing import capture_logs

    store, clock, http, poller = poller_env
    body = fs_body("COMPLETED", 42)
    body["job"]["padding"] = "x" * 900_000
    http.queue(f"{FS}/v2/users/batch/big", ok(body))
    await store.register(WatchKey("fs", "users", "big"), clock.now())
    with capture_logs() as logs:
        assert await run_due(store, clock, poller) == ["terminal"]
    event = await the_event(store)
    assert event["job"]["omitted"] == "too_large" and event["job"]["bytes"] > 900_000
    assert event["counts"]["succeeded"] == 42  # what was read from it is kept
    [entry] = await store.events.read_outbox()
    stored = await store.client.get(store.keys.event(entry["event_id"]))
    assert len(stored) < poller._settings.max_job_bytes
    assert any(line["event"] == "event_job_omitted" for line in logs)
    assert poller._metrics.guarded.labels("event_job_omitted")._value.get() == 1


async def test_a_finished_jobs_body_is_stored_once_in_its_event(poller_env) -> None:  # type: ignore[no-untyped-def]
    """The terminal watch keeps no copy of the last answer: its event carries it."""
    store, clock, http, poller = poller_env
    body = fs_body("COMPLETED", 3)
    body["job"]["notes"] = "n" * 2048
    http.queue(f"{FS}/v2/users/batch/once", ok(body))
    watch, _ = await store.register(WatchKey("fs", "users", "once"), clock.now())
    assert await run_due(store, clock, poller) == ["terminal"]
    event = await the_event(store)
    assert event["job"]["job"]["notes"] == "n" * 2048
    stored = await store.get_watch(watch.id)
    assert stored is not None and stored.snapshot is None
    doc = await store.client.hget(store.keys.watch(watch.id), "doc")
    assert "nnnn" not in doc


async def test_a_huge_running_job_body_is_not_kept_in_its_watch(poller_env) -> None:  # type: ignore[no-untyped-def]
    """A running job answering 900 KB at every poll: the watch (rewritten at each poll)
    keeps a note of the size, not the body; the status and counts read from it stay."""
    store, clock, http, poller = poller_env
    body = fs_body("PROCESSING", 7)
    body["job"]["padding"] = "x" * 900_000
    http.queue(f"{FS}/v2/users/batch/big-running", ok(body))
    watch, _ = await store.register(WatchKey("fs", "users", "big-running"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    stored = await store.get_watch(watch.id)
    assert stored is not None and stored.status == "PROCESSING"
    assert stored.snapshot is not None and stored.snapshot["omitted"] == "too_large"
    assert stored.snapshot["bytes"] > 900_000
    doc = await store.client.hget(store.keys.watch(watch.id), "doc")
    assert len(doc) < 2_000


async def test_no_upstream_text_makes_an_event_large(poller_env) -> None:  # type: ignore[no-untyped-def]
    """Past data.job: a 900 KB status of a running job (carried later as the terminal
    event's previous_status) and a 900 KB creation time are cut, whatever the provider."""
    from bridge.model import MAX_STATUS

    store, clock, http, poller = poller_env
    running = fs_body("PROCESSING")
    running["job"]["status"] = "P" * 900_000
    done = fs_body("COMPLETED", 3)
    done["job"]["created"] = "2" * 900_000
    http.queue(f"{FS}/v2/users/batch/long", ok(running), ok(done))
    watch, _ = await store.register(WatchKey("fs", "users", "long"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    stored = await store.get_watch(watch.id)
    assert stored is not None and stored.status is not None and len(stored.status) == MAX_STATUS
    clock.advance(10)
    assert await run_due(store, clock, poller) == ["terminal"]
    event = await the_event(store)
    assert len(event["previous_status"]) == MAX_STATUS and event["created_at"] is None


async def test_a_terminal_write_whose_answer_was_lost_still_counts(poller_env) -> None:  # type: ignore[no-untyped-def]
    """The terminal step went through but its answer timed out; the retry finds the
    watch finished under this very lease with this event: it counts as this poll's
    (log line, event metric, a wake for the deliverer), and nothing is written twice."""
    import time
    from dataclasses import replace as swap

    from bridge.errors import StoreUnavailable

    store, clock, http, poller = poller_env
    http.queue(f"{FS}/v2/users/batch/lost", ok(fs_body("COMPLETED", 5)))
    await store.register(WatchKey("fs", "users", "lost"), clock.now())
    real_finish, tries = store.finish, []

    async def answer_lost(*args: Any, **kwargs: Any) -> str:
        tries.append(1)
        verdict = await real_finish(*args, **kwargs)
        if len(tries) == 1:
            raise StoreUnavailable("TimeoutError: Timeout reading from socket")
        return verdict  # type: ignore[no-any-return]

    store.finish = answer_lost
    woken: list[int] = []
    poller._on_event = lambda: woken.append(1)
    [claimed] = await store.claim(clock.now(), 60, 10, poller._rate_limits)
    claimed = swap(claimed, held_until=time.monotonic() + 30)
    assert await poller.poll(claimed) == "terminal"
    assert len(tries) == 2 and woken == [1]
    assert len(await store.events.read_outbox()) == 1
    assert poller._metrics.events.labels("import.completed")._value.get() == 1


def test_a_size_note_is_kept_as_it_is() -> None:
    """The watch keeps the note of an oversized body; an event made from it later
    carries the same note, with the body's size, not the note's."""
    from bridge.events import bounded_job

    body = {"x": "y" * 5000}
    note = bounded_job(body, 0)
    assert bounded_job(note, 0) == note and note["bytes"] > 5000
