"""Hostile upstream answers: every one becomes a snapshot or a counted, visible error."""

from __future__ import annotations

import json
from typing import Any

from bridge.model import WatchKey, WatchState
from bridge.providers.base import MAX_JSON_DEPTH, TOO_DEEP, bounded_depth
from bridge.providers.http import HttpAnswer
from tests.unit.test_poller import FS, env, fs_body, run_due

__all__ = ["env"]


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


async def test_deeply_nested_completed_job_still_gets_its_event(env) -> None:  # type: ignore[no-untyped-def]
    """A COMPLETED answer nested 1,000 levels deep produces its one event, body cut."""
    store, clock, http, poller = env
    url = f"{FS}/v2/users/batch/deep"
    deep = b'{"d":' * 1000 + b"1" + b"}" * 1000  # past what json/orjson can write
    raw = json.dumps(fs_body("COMPLETED", 7)).encode()[:-1] + b', "extra": ' + deep + b"}"
    http.queue(url, HttpAnswer(200, raw))
    watch, _ = await store.register(WatchKey("fs", "users", "deep"), clock.now())
    assert await run_due(store, clock, poller) == ["terminal"]
    [event], _ = await store.list_events(watch_id=watch.id)
    assert event.type == "import.completed" and event.data["counts"]["succeeded"] == 7


async def test_too_deep_for_the_parser_is_a_visible_error(env) -> None:  # type: ignore[no-untyped-def]
    """Past what the parser reads at all (2,000 levels): backoff and last_error, no crash."""
    store, clock, http, poller = env
    url = f"{FS}/v2/users/batch/deeper"
    http.queue(url, HttpAnswer(200, b'{"a":' * 2000 + b"1" + b"}" * 2000))
    watch, _ = await store.register(WatchKey("fs", "users", "deeper"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    stored = await store.get_watch(watch.id)
    assert stored and stored.state is WatchState.WATCHING and stored.polls == 1
    assert stored.errors == 1 and "too deep" in (stored.last_error or "")


async def test_an_unforeseen_parse_failure_is_counted_not_silent(env) -> None:  # type: ignore[no-untyped-def]
    """A provider that raises something unexpected: the poll counts as an error."""
    store, clock, http, poller = env
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


async def test_deep_error_bodies_are_described_safely(env) -> None:  # type: ignore[no-untyped-def]
    """A 500 whose body is nested 5,000 deep is a transient error, not a crash."""
    store, clock, http, poller = env
    url = f"{FS}/v2/users/batch/deep500"
    http.queue(url, HttpAnswer(500, b"[" * 5000 + b"]" * 5000))
    watch, _ = await store.register(WatchKey("fs", "users", "deep500"), clock.now())
    assert await run_due(store, clock, poller) == ["ok"]
    stored = await store.get_watch(watch.id)
    assert stored and stored.errors == 1 and (stored.last_error or "").startswith("500")
