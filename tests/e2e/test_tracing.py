"""Traces: a real OTLP/HTTP receiver on loopback decodes what the bridge exports
(opentelemetry-proto); the webhook receiver verifies signatures and keeps headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import running_bridge, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

SETTINGS = """
[delivery]
allow_private_targets = true
retry_schedule = [0.1]
"""


class OtlpReceiver:
    """POST /v1/traces, protobuf: every span kept, with its service's name."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope in resource_spans.scope_spans:
                self.spans += [(service, span) for span in scope.spans]
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    def named(self, prefix: str) -> list[Any]:
        return [span for _, span in self.spans if span.name.startswith(prefix)]


@pytest.fixture
async def otlp() -> AsyncIterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    await receiver.start()
    yield receiver
    assert receiver.runner is not None
    await receiver.runner.cleanup()


def attributes(span: Any) -> dict[str, Any]:
    out = {}
    for a in span.attributes:
        value = a.value
        out[a.key] = value.string_value or value.int_value or value.bool_value
    return out


async def test_the_poll_that_saw_the_end_and_its_deliveries_are_one_trace(
    tmp_path: Path,
    redis_server: EmbeddedRedis,
    prefix: str,
    otlp: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A span per poll and per delivery attempt, exported over OTLP/HTTP; the attempts of
    the terminal event are children of the poll that saw the job end; the receiver
    gets a traceparent naming its attempt's span (and a failed attempt is an error)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # ms: export at once
    monkeypatch.setenv("OTEL_SERVICE_NAME", "bridge-under-test")
    async with running_bridge(tmp_path, redis_server.url, prefix, extra=SETTINGS) as run:
        assert run.bridge.tracing.enabled
        await run.subscribe("hooks")
        run.receiver.scripts["hooks"] = [(500, {})]  # the first attempt fails, then 2xx
        run.sim.add_job(JobSpec(provider="fullstory", id="traced-job", duration=0.3))
        resp = await run.http.post(
            f"{run.api}/v1/watches", json={"source": "fs", "job_id": "traced-job"}
        )
        watch_id = (await resp.json())["id"]

        async def delivered() -> bool:
            return sum(r.verified for r in run.receiver.for_path("hooks")) >= 2

        await wait_until(delivered, 20, "the event, delivered")

        async def exported() -> bool:
            return len(otlp.named("deliver ")) >= 2 and bool(otlp.named("poll "))

        await wait_until(exported, 20, "the poll and both attempts, exported")

    assert {service for service, _ in otlp.spans} == {"bridge-under-test"}
    polls = [p for p in otlp.named("poll fs") if attributes(p).get("bridge.watch_id") == watch_id]
    assert len(polls) >= 2  # running, then completed: a span each
    (terminal,) = [p for p in polls if attributes(p).get("bridge.outcome") == "completed"]
    assert attributes(terminal)["bridge.job_id"] == "traced-job"
    attempts = otlp.named("deliver import.completed")
    assert len(attempts) == 2
    for attempt in attempts:
        assert attempt.trace_id == terminal.trace_id
        assert attempt.parent_span_id == terminal.span_id
    codes = sorted(attributes(a)["http.response.status_code"] for a in attempts)
    assert codes == [200, 500]
    failed = next(a for a in attempts if attributes(a)["http.response.status_code"] == 500)
    assert failed.status.code == 2  # STATUS_CODE_ERROR
    headers = [r.headers.get("traceparent", "") for r in run.receiver.for_path("hooks")]
    seen = {(h.split("-")[1], h.split("-")[2]) for h in headers if h}
    assert seen == {(terminal.trace_id.hex(), a.span_id.hex()) for a in attempts}
