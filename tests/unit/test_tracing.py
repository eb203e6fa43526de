"""When tracing is on: only with an OTLP endpoint set and the SDK installed."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from bridge.model import Event
from bridge.store import codec
from bridge.tracing import Tracing, shut_down_within, tracing_from_env

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {**ENDPOINT, "OTEL_SDK_DISABLED": "true"},
        {**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
    ],
)
def test_no_endpoint_or_disabled_is_no_tracing(environ: dict[str, str]) -> None:
    tracing = tracing_from_env(environ)
    assert not tracing.enabled and type(tracing) is Tracing
    with tracing.poll("fs", "w_1", "j") as span:
        span.set("x", 1)
        assert tracing.traceparent() is None


async def test_an_endpoint_turns_it_on_and_spans_carry_a_traceparent() -> None:
    """On; and its stop is bounded, whether the collector answers or not (here: no
    collector at all)."""
    tracing = tracing_from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/t"})
    try:
        assert tracing.enabled
        with tracing.poll("fs", "w_1", "j"):
            parent = tracing.traceparent()
        assert parent is not None and parent.startswith("00-")
        with tracing.delivery(parent, "import.completed", "dlv_1", "hooks.example"):
            child = tracing.traceparent()
        assert child is not None
        assert child.split("-")[1] == parent.split("-")[1]  # the same trace
        assert child.split("-")[2] != parent.split("-")[2]  # its own span
    finally:
        await shut_down_within(tracing, 0.5)


def test_an_endpoint_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # not installed
    tracing = tracing_from_env(ENDPOINT)
    assert not tracing.enabled
    assert "import-job-bridge[otel]" in capsys.readouterr().out


def test_an_events_trace_is_kept_with_it_and_only_when_there_is_one() -> None:
    event = Event("evt_1", "import.completed", "2027-01-01T00:00:00Z", "w_1", {"a": 1})
    assert '"trace"' not in codec.event_to_json(event)
    traced = replace(event, trace="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    assert codec.event_from_json(codec.event_to_json(traced)) == traced
    assert codec.event_from_json(codec.event_to_json(event)).trace is None
    assert "trace" not in traced.envelope()  # never in a webhook body


async def test_tracing_that_fails_never_fails_the_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tracer that cannot open a span: the poll still runs (a no-op span) and it is said
    once; an error of the work itself goes through the span unchanged."""
    tracing = tracing_from_env(ENDPOINT)
    try:
        with tracing.poll("fs", "w_1", "j") as span:  # a working span first
            pass
        with pytest.raises(KeyError), tracing.poll("fs", "w_1", "j"):
            raise KeyError("the work's own")

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("exporter gone")

        monkeypatch.setattr(tracing._tracer, "start_as_current_span", broken)  # type: ignore[attr-defined]
        ran = []
        for _ in range(2):
            with tracing.poll("fs", "w_1", "j") as span:
                span.set("x", 1)
                ran.append(1)
        assert ran == [1, 1]
        assert capsys.readouterr().out.count("tracing_failed") == 1
    finally:
        await shut_down_within(tracing, 0.5)


@pytest.mark.parametrize(
    "extra", [{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, {"OTEL_TRACES_EXPORTER": "console"}]
)
def test_what_is_not_built_in_is_said_and_off(
    extra: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert not tracing_from_env({**ENDPOINT, **extra}).enabled
    assert "tracing_off" in capsys.readouterr().out
