"""The server clock, the watchdog's data-loss detection and the outage log."""

from __future__ import annotations

import logging

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from bridge.clock import MAX_TRUSTED_RTT_S, FakeClock, ServerClock, accept_reading
from bridge.metrics import Metrics
from bridge.outage import OutageLog
from bridge.store.redis import RedisStore
from bridge.watchdog import Watchdog


class Mono:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_server_clock_follows_redis_not_the_wall_clock() -> None:
    """After a reading, now() is Redis time carried by the monotonic clock: a wall
    clock 40 s ahead, or one that steps, changes nothing."""
    wall, mono = FakeClock(1_000_040.0), Mono()
    clock = ServerClock(wall, mono)
    sent = clock.mark()
    mono.t += 0.002
    assert clock.adjust(1_000_000.0, sent)
    assert clock.now() == pytest.approx(1_000_000.001)
    assert clock.offset_s == pytest.approx(-40.0, abs=0.01)
    wall.advance(-3600)  # an NTP step on this host
    mono.t += 1.0
    assert clock.now() == pytest.approx(1_000_001.001)


def test_slow_readings_are_refused_and_time_never_goes_back() -> None:
    """A reading whose round trip took seconds (a pool wait, a retry) is not trusted; a
    good reading slightly behind does not move now() backwards."""
    wall, mono = FakeClock(500.0), Mono()
    clock = ServerClock(wall, mono)
    sent = clock.mark()
    mono.t += 0.001
    assert clock.adjust(500.0, sent)
    before = clock.now()
    sent = clock.mark()
    mono.t += 4.0  # a 4 s round trip
    assert not clock.adjust(510.0, sent)
    assert clock.now() == pytest.approx(before + 4.0)
    sent = clock.mark()
    mono.t += 0.001
    assert clock.adjust(503.0, sent)  # Redis says a little earlier than we carried
    assert clock.now() >= before + 4.0


@given(st.floats(0, 10), st.floats(0.0001, 10))
def test_accept_reading(rtt: float, best: float) -> None:
    """Trusted exactly when short in absolute terms or within twice the best."""
    assert accept_reading(rtt, best) == (rtt <= MAX_TRUSTED_RTT_S or rtt <= 2 * best)


async def test_a_marker_rewritten_by_another_process_is_a_loss(prefix: str) -> None:
    """Redis came back empty and a newly started replica wrote the marker first: the
    running process still notices (the value changed), rebuilds, counts it once."""
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = RedisStore(client, prefix)
    rebuilt: list[int] = []

    async def rebuild() -> None:
        rebuilt.append(1)

    metrics = Metrics()
    dog = Watchdog(
        store=store, clock=None, metrics=metrics, outage=OutageLog(), on_data_lost=rebuild
    )
    await dog.start()
    await dog.tick()
    assert rebuilt == []
    await client.flushall()
    await store.claim_marker("someone-else")
    await dog.tick()
    await dog.tick()
    assert rebuilt == [1] and dog.data_lost == 1
    assert metrics.registry.get_sample_value("bridge_redis_data_lost_total") == 1
    await client.aclose()


def test_outage_log_says_redis_outages_once_and_keeps_other_tracebacks() -> None:
    """A Redis outage is one line until it ends; so is a Redis that refuses writes (full,
    read-only; Redis 6.2 wraps the reply inside a script), which only a write that went
    through ends; another failure keeps its traceback."""
    from redis._parsers.base import BaseParser
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError

    from bridge.store.redis_errors import store_error

    def reply(text: str) -> BaseException:  # as redis-py turns an error reply into one,
        return store_error(BaseParser.parse_error(text))  # and the store's edge maps it

    outage = OutageLog()
    in_script = "Error running script (call to f_1): @user_script:9: -OOM command not allowed"
    with capture_logs() as logs:
        for _ in range(5):
            outage.failed("claims", store_error(RedisConnectionError("gone")))
        outage.succeeded()
        outage.failed("claims", reply("OOM command not allowed when used memory > 'maxmemory'."))
        outage.failed("claims", reply(in_script))
        outage.failed("claims", reply("MISCONF Redis is configured to save RDB snapshots"))
        outage.succeeded()  # a read answered: Redis may still refuse writes
        outage.failed("api", reply("READONLY You can't write against a read only replica."))
        outage.wrote()
        outage.failed("claims", store_error(ResponseError("WRONGTYPE Operation against a key")))
    events = [e["event"] for e in logs]
    assert events == [
        "redis_unavailable",
        "redis_recovered",
        "redis_refusing_writes",
        "redis_accepting_writes",
        "loop_failed",
    ]


def test_aiohttp_server_log_loses_the_raw_request(capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever aiohttp's server logs about a malformed request keeps only the type."""
    import structlog

    from bridge import logs

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    logs.configure("INFO", json=True)
    try:
        try:
            raise ValueError("Invalid header: Authorization: Bearer very-secret-token\x00")
        except ValueError as exc:
            logging.getLogger("aiohttp.server").error("Error handling %s", "x", exc_info=exc)
        err = capsys.readouterr().err
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        structlog.configure(**saved[2])
    assert "very-secret-token" not in err and "ValueError" in err


def test_the_first_reading_replaces_a_skewed_local_start() -> None:
    """Read before the first measurement, a clock 40 s ahead does not hold time back
    for 40 s once Redis time is known."""
    wall, mono = FakeClock(1_000_040.0), Mono()
    clock = ServerClock(wall, mono)
    assert clock.now() == 1_000_040.0
    sent = clock.mark()
    mono.t += 0.001
    assert clock.adjust(1_000_000.0, sent)
    assert clock.now() == pytest.approx(1_000_000.0005)


def test_console_tracebacks_show_no_local_variables(capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal, a logged traceback names the error but not the frames' local
    variables (rich would print them, tokens included)."""
    import logging

    import structlog

    from bridge import logs

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    logs.configure("INFO", json=False)
    try:
        token = "admin-token-" + "s3cr3t" * 3  # a local the traceback must not show
        try:
            raise RuntimeError(f"failed with a token of {len(token)} characters")
        except RuntimeError:
            structlog.get_logger("t").exception("loop_failed")
        err = capsys.readouterr().err
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        structlog.configure(**saved[2])
    assert "RuntimeError" in err and "s3cr3t" not in err


def test_a_late_failure_of_an_ended_outage_is_not_a_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call sent while Redis was silent times out just after another call found Redis
    back: no second outage is opened (nor said); one after that bound is."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from bridge import outage as module
    from bridge.store.redis_errors import store_error

    now = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    outage = OutageLog()
    with capture_logs() as logs:
        outage.failed("claims", store_error(RedisTimeoutError("silent")))
        now[0] += 15
        outage.succeeded()
        now[0] += 0.5
        outage.failed("watchdog", store_error(RedisTimeoutError("sent during the outage")))
        assert outage.down_since is None
        now[0] += module.LATE_FAILURE_S
        outage.failed("watchdog", store_error(RedisTimeoutError("silent again")))
    assert [e["event"] for e in logs] == [
        "redis_unavailable",
        "redis_recovered",
        "redis_unavailable",
    ]
