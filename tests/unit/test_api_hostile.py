"""Hostile requests to the admin API, over a real socket and the server as the daemon
builds it: every 4xx in the one error shape, no 500s, nothing of a header in the logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from structlog.testing import capture_logs

from bridge.api.protocol import start_site
from bridge.api.server import ApiContext, build_api
from bridge.clock import FakeClock
from bridge.metrics import Metrics
from bridge.store.deliveries import DeliveryStore
from bridge.store.redis import RedisStore

TOKEN = "hostile-test-token-0123"


class Api:
    def __init__(self, port: int, store: DeliveryStore) -> None:
        self.port = port
        self.store = store

    async def raw(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send bytes as they are; the status, headers and body of the answer."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(request)
        await writer.drain()
        data = await reader.read()
        writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body

    async def call(
        self, method: str, path: str, body: bytes | None = None, auth: str | None = None
    ) -> tuple[int, Any]:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        head += f"Authorization: {auth or 'Bearer ' + TOKEN}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        status, headers, raw = await self.raw(head.encode() + b"\r\n" + (body or b""))
        assert headers.get("content-type", "").startswith("application/json"), (status, raw)
        return status, json.loads(raw) if raw else None


@pytest.fixture
async def api(prefix: str) -> AsyncIterator[Api]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = RedisStore(redis, prefix)
    deliveries = DeliveryStore(store)
    ctx = ApiContext(
        store=store,
        clock=FakeClock(),
        metrics=Metrics(),
        source_kinds={"fs": ("users", "events")},
        tokens=(TOKEN, ""),  # an empty token never matches anything
        max_body_bytes=64 * 1024,
        deliveries=deliveries,
        allow_private_targets=True,
    )
    runner, port = await start_site(build_api(ctx), "127.0.0.1", 0, shutdown_timeout=1)
    yield Api(port, deliveries)
    await runner.cleanup()
    await redis.aclose()


def shaped(body: Any) -> bool:
    return isinstance(body, dict) and {"code", "message", "fields"} <= body.keys()


@pytest.mark.parametrize(
    "name",
    [
        "Content-Length",
        "Transfer-Encoding",
        "Host",
        "Connection",
        "Upgrade",
        "TE",
        "Trailer",
        "Keep-Alive",
        "Proxy-Authorization",
        "webhook-signature",
        "Content-Type",
        "X-Evil\n",
        "X Space",
        "",
    ],
)
async def test_forbidden_header_names_get_422(api: Api, name: str) -> None:
    """Framing, hop-by-hop, reserved and non-token header names are refused, naming it."""
    body = json.dumps({"url": "http://127.0.0.1:9/h", "headers": {name: "v"}}).encode()
    status, answer = await api.call("POST", "/v1/subscriptions", body)
    assert status == 422 and shaped(answer)
    assert answer["fields"][0]["name"] == "headers"


@pytest.mark.parametrize("value", ["a\x00b", "a\r\nX-Injected: 1", "caf\u00e9", "x" * 2001])
async def test_header_values_with_control_characters_get_422(api: Api, value: str) -> None:
    """Values hold visible ASCII, space and tab only; the value is never echoed."""
    body = json.dumps({"url": "http://127.0.0.1:9/h", "headers": {"X-Ok": value}}).encode()
    status, answer = await api.call("POST", "/v1/subscriptions", body)
    assert status == 422 and "X-Ok" in json.dumps(answer) and value not in json.dumps(answer)


async def test_allowed_custom_headers_are_kept(api: Api) -> None:
    """An ordinary header is accepted and listed by name."""
    body = json.dumps(
        {"url": "http://127.0.0.1:9/h", "headers": {"X-Team": "data\tplatform"}}
    ).encode()
    status, answer = await api.call("POST", "/v1/subscriptions", body)
    assert status == 201 and answer["headers"] == ["X-Team"]


@pytest.mark.parametrize(
    ("auth", "status"),
    [
        ("Bearer \xff", 401),
        ("Bearer \u00a0", 401),
        ("Bearer ", 401),
        ("Bearer", 401),
        (f"bearer {TOKEN}", 200),
        (f"BEARER {TOKEN}", 200),
        (f"Basic {TOKEN}", 401),
    ],
)
async def test_authorization_edge_cases(api: Api, auth: str, status: int) -> None:
    """Non-ASCII, empty and non-bearer headers are 401; the scheme is case-insensitive."""
    head = f"GET /v1/watches HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {auth}\r\n"
    got, headers, raw = await api.raw(head.encode("latin-1") + b"\r\n")
    assert got == status
    assert headers["content-type"].startswith("application/json")
    if status == 401:
        assert shaped(json.loads(raw))


async def test_protocol_errors_have_the_error_shape_and_log_no_header(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp's own 400s (NUL or control byte in a header, long URL, bad method) are
    JSON in the one shape, and the offending header line is never logged."""
    secret = "Bearer leaked-" + TOKEN
    requests = [
        f"GET /v1/watches HTTP/1.1\r\nHost: x\r\nAuthorization: {secret}\x00\r\n\r\n".encode(),
        f"GET /v1/watches HTTP/1.1\r\nHost: x\r\nAuthorization: {secret}\x01z\r\n\r\n".encode(),
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    with capture_logs() as logs:
        for request in requests:
            status, headers, raw = await api.raw(request)
            assert 400 <= status < 500, status
            assert headers["content-type"].startswith("application/json"), raw
            assert shaped(json.loads(raw))
    assert "leaked" not in repr(logs) and "leaked" not in caplog.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/watches", b"[" * 3000 + b"]" * 3000),
        ("POST", "/v1/watches", b'{"a":' * 1000 + b"1" + b"}" * 1000),
        ("GET", "/v1/watches?limit=%C2%B2", None),
        ("GET", "/v1/watches?limit=" + "9" * 5000, None),
        ("GET", "/v1/deliveries?limit=%EF%BC%95", None),
        ("POST", "/v1/subscriptions/sub_x/recover?since=nan", None),
        ("GET", "/v1/watches?cursor=" + "A" * 6000, None),
    ],
)
async def test_inputs_that_once_gave_500(api: Api, method: str, path: str, body: bytes) -> None:
    """Deep bodies, odd digits and non-finite numbers are client errors, not 500s."""
    if "recover" in path:
        from bridge.model import Subscription

        await api.store.save_subscription(
            Subscription(id="sub_x", url="http://127.0.0.1:9/h", secrets=(("s", None),))
        )
        for since in ("nan", "inf", "-inf", "1e400"):
            status, answer = await api.call(method, path.replace("nan", since), body)
            assert status == 400 and answer["code"] == "invalid_since"
        return
    status, answer = await api.call(method, path, body)
    assert 400 <= status < 500 and shaped(answer)


async def test_rotations_keep_the_signature_header_short(api: Api) -> None:
    """Many rotations inside the grace: the current secret and the previous one only."""
    body = json.dumps({"url": "http://127.0.0.1:9/h"}).encode()
    status, created = await api.call("POST", "/v1/subscriptions", body)
    assert status == 201
    secrets = [created["secret"]]
    for _ in range(30):
        status, rotated = await api.call(
            "POST", f"/v1/subscriptions/{created['id']}/rotate-secret", b"{}"
        )
        assert status == 200
        secrets.append(rotated["secret"])
    sub = await api.store.get_subscription(created["id"])
    assert sub and [s for s, _ in sub.secrets] == [secrets[-1], secrets[-2]]


async def test_recover_requeues_every_dead_delivery_of_one_millisecond(api: Api) -> None:
    """300 dead deliveries created in the same millisecond: recover requeues all 300."""
    from bridge.model import Delivery, DeliveryStatus, Subscription
    from bridge.store.deliveries import delivery_id

    await api.store.save_subscription(
        Subscription(id="sub_r", url="http://127.0.0.1:9/h", secrets=(("s", None),))
    )
    now = 1_800_000_000.0
    dead = [
        Delivery(
            id=delivery_id(f"evt_{i}", "sub_r"),
            event_id=f"evt_{i}",
            subscription_id="sub_r",
            status=DeliveryStatus.DEAD,
            created_at=now,
            detected_at=now,
        )
        for i in range(300)
    ]
    await api.store.add_deliveries(dead, now)
    pipe = api.store.client.pipeline()
    for d in dead:
        pipe.hset(api.store.keys.delivery(d.id), "status", "dead")
    await pipe.execute()
    status, answer = await api.call("POST", f"/v1/subscriptions/sub_r/recover?since={now - 1}")
    assert status == 200 and answer["requeued"] == 300


async def test_what_the_path_names_is_looked_up_before_the_body_is_read(api: Api) -> None:
    """A PATCH of a subscription that does not exist is a 404, whatever its body."""
    for body in (b"", b"{not json"):
        status, answer = await api.call("PATCH", "/v1/subscriptions/sub_nope", body)
        assert status == 404 and answer["code"] == "subscription_not_found", answer


async def test_a_header_value_in_the_form_of_a_sealed_one_is_refused(api: Api) -> None:
    """It could not be told from a sealed value when read back (sealing.py)."""
    body = {"url": "http://127.0.0.1:9/h", "headers": {"X-A": "sealed:1:abcdef12:x"}}
    status, answer = await api.call("POST", "/v1/subscriptions", json.dumps(body).encode())
    assert status == 422 and shaped(answer) and "sealed:" in str(answer["fields"])
