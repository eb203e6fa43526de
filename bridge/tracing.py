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
            self._span.set_attribute(name, value)

    def failed(self, why: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_status(Status(StatusCode.ERROR, why[:200]))


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
        with self._tracer.start_as_current_span(
            f"poll {source}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield _SdkSpan(span)

    @contextlib.contextmanager
    def delivery(
        self, parent: str | None, event_type: str, delivery_id: str, host: str
    ) -> Iterator[Span]:
        from opentelemetry.trace import SpanKind

        context = self._propagator.extract({"traceparent": parent}) if parent else None
        attributes = {
            "bridge.event_type": event_type,
            "bridge.delivery_id": delivery_id,
            "http.request.method": "POST",
            "server.address": host,
        }
        with self._tracer.start_as_current_span(
            f"deliver {event_type}", context=context, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield _SdkSpan(span)

    def traceparent(self) -> str | None:
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return carrier.get("traceparent")

    def note(self, name: str, value: str | int | float | bool | None) -> None:
        from opentelemetry import trace

        if value is not None:
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
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
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
    if protocol.strip() != "http/protobuf":
        log.warning("tracing_protocol", asked=protocol, used="http/protobuf")
    named = "OTEL_SERVICE_NAME" in environ or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {"service.name": SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info("tracing_on", exporter="otlp/http")
    return OtelTracing(provider)
