"""OpenTelemetry traces, when the `otel` extra is installed and an OTLP endpoint is
configured by the standard variables (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
OTEL_TRACES_SAMPLER, OTEL_BSP_* and the exporter's headers, timeout and certificate
variables work as the SDK documents them).

A span per poll and per delivery attempt. The poll that sees a job end stores its
trace context with the event, so every delivery attempt of that event is a child of
that poll: one trace from the upstream's answer to each receiver. Each webhook carries
its attempt's W3C `traceparent`, so a receiver can continue the trace.

Without the extra or the variables this is a no-op: nothing is imported, and the hot
paths pay for one attribute check. The bridge keeps its own tracer provider (no global
one), so a library using OpenTelemetry beside it is not affected."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import structlog

from bridge import __version__

log = structlog.get_logger()

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
SERVICE_NAME = "import-job-bridge"


class Span:
    """What the bridge says of a span; a no-op here, the SDK's span when tracing."""

    def set(self, name: str, value: str | int | float | bool | None) -> None:
        """An attribute (None: not set)."""

    def failed(self, why: str) -> None:
        """The span's status is an error, saying why."""


class Tracing:
    """No tracing: every call does nothing."""

    enabled = False

    @contextlib.contextmanager
    def poll(self, source: str, watch_id: str, job_id: str) -> Iterator[Span]:
        """The span of one poll; current while the poll runs."""
        yield Span()

    @contextlib.contextmanager
    def delivery(
        self, parent: str | None, event_type: str, delivery_id: str, host: str
    ) -> Iterator[Span]:
        """The span of one delivery attempt, a child of the traceparent `parent` (the
        poll that made its event) when there is one."""
        yield Span()

    def traceparent(self) -> str | None:
        """The current span's W3C traceparent header value."""
        return None

    def note(self, name: str, value: str | int | float | bool | None) -> None:
        """An attribute of the current span (None: not set)."""

    def shutdown(self) -> None:
        """Export what is left (blocking: call it off the event loop)."""


class _SdkSpan(Span):
    def __init__(self, span: Any) -> None:
        self._span = span

    def set(self, name: str, value: str | int | float | bool | None) -> None:
        if value is not None:
            with _quiet():
                self._span.set_attribute(name, value)

    def failed(self, why: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        with _quiet():
            self._span.set_status(Status(StatusCode.ERROR, why[:200]))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Tracing never fails a poll or a delivery: its own errors are logged, once each."""
    try:
        yield
    except Exception as exc:
        _said_once(type(exc).__name__)


_SAID: set[str] = set()


def _said_once(what: str) -> None:
    if what not in _SAID:
        _SAID.add(what)
        log.warning("tracing_failed", error=what)


@contextlib.contextmanager
def _span_of(start: Any) -> Iterator[Span]:
    """The span a context manager factory opens, as a Span; a no-op Span when opening
    or closing it fails. What the body raises goes through unchanged."""
    manager = None
    span: Span = Span()
    with _quiet():
        manager = start()
        span = _SdkSpan(manager.__enter__())
    if manager is None:
        yield span
        return
    try:
        yield span
    except BaseException as exc:
        try:  # the span records the body's error, and re-raises it
            manager.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException as raised:
            if raised is not exc and isinstance(raised, Exception):
                _said_once(type(raised).__name__)
        raise
    with _quiet():
        manager.__exit__(None, None, None)


class OtelTracing(Tracing):
    """Spans through the OpenTelemetry SDK, exported over OTLP/HTTP."""

    enabled = True

    def __init__(self, provider: Any) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._provider = provider
        self._tracer = provider.get_tracer("bridge", __version__)
        self._propagator = TraceContextTextMapPropagator()

    @contextlib.contextmanager
    def poll(self, source: str, watch_id: str, job_id: str) -> Iterator[Span]:
        from opentelemetry.trace import SpanKind

        attributes = {"bridge.source": source, "bridge.watch_id": watch_id, "bridge.job_id": job_id}
        with _span_of(
            lambda: self._tracer.start_as_current_span(
                f"poll {source}", kind=SpanKind.CLIENT, attributes=attributes
            )
        ) as span:
            yield span

    @contextlib.contextmanager
    def delivery(
        self, parent: str | None, event_type: str, delivery_id: str, host: str
    ) -> Iterator[Span]:
        from opentelemetry.trace import SpanKind

        attributes = {
            "bridge.event_type": event_type,
            "bridge.delivery_id": delivery_id,
            "http.request.method": "POST",
            "server.address": host,
        }

        def start() -> Any:
            context = self._propagator.extract({"traceparent": parent}) if parent else None
            return self._tracer.start_as_current_span(
                f"deliver {event_type}",
                context=context,
                kind=SpanKind.CLIENT,
                attributes=attributes,
            )

        with _span_of(start) as span:
            yield span

    def traceparent(self) -> str | None:
        carrier: dict[str, str] = {}
        with _quiet():
            self._propagator.inject(carrier)
        return carrier.get("traceparent")

    def note(self, name: str, value: str | int | float | bool | None) -> None:
        from opentelemetry import trace

        if value is not None:
            with _quiet():
                trace.get_current_span().set_attribute(name, value)

    def shutdown(self) -> None:
        self._provider.shutdown()


async def shut_down_within(tracing: Tracing, seconds: float) -> None:
    """Export the last spans, waiting at most `seconds`: the export runs in a daemon
    thread, so an unreachable collector delays neither this nor the process's exit."""
    if not tracing.enabled:
        return
    loop = asyncio.get_running_loop()
    finished = loop.create_future()

    def settle() -> None:
        if not finished.done():
            finished.set_result(None)

    def run() -> None:
        try:
            tracing.shutdown()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle)

    threading.Thread(target=run, name="trace-export", daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(finished, seconds)


def tracing_from_env(environ: Mapping[str, str]) -> Tracing:
    """OtelTracing when an OTLP endpoint is configured and the SDK is installed; else the
    no-op, saying once why when tracing was asked for but cannot be had."""
    if not any(environ.get(name) for name in ENDPOINT_VARIABLES):
        return Tracing()
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Tracing()
    exporter = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporter == "none":
        return Tracing()
    if exporter != "otlp":
        log.warning("tracing_off", reason=f"OTEL_TRACES_EXPORTER={exporter}: only otlp is built in")
        return Tracing()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "tracing_unavailable",
            reason="an OTLP endpoint is set but the otel extra is not installed",
            fix="pip install 'import-job-bridge[otel]'",
        )
        return Tracing()
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol.strip() != "http/protobuf":  # e.g. grpc: its port would get HTTP
        log.warning(
            "tracing_off",
            reason=f"OTLP protocol {protocol!r}: only http/protobuf is built in "
            "(the collector's HTTP port, 4318 by default)",
        )
        return Tracing()
    named = "OTEL_SERVICE_NAME" in environ or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {"service.name": SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info("tracing_on", exporter="otlp/http")
    return OtelTracing(provider)
