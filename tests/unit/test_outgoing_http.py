"""What the bridge's outgoing requests carry: its User-Agent, and a proxy only when the
operator asks for one (http.trust_env), with the SSRF guard still in force."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge import USER_AGENT, __version__
from bridge.delivery.sender import WebhookSender, webhook_session
from bridge.delivery.targets import TargetPolicy
from bridge.providers.http import UpstreamHttp, default_session


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[TestServer, list[web.Request]]]:
    """A stand-in forward proxy on 127.0.0.2: records each request and answers 204."""
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.2")
    await server.start_server()
    yield server, seen
    await server.close()


def test_the_user_agent_names_the_project_and_version() -> None:
    """import-job-bridge/<version> (+project URL)."""
    assert USER_AGENT.startswith(f"import-job-bridge/{__version__} (+https://")


async def test_upstream_requests_carry_the_user_agent(proxy) -> None:  # type: ignore[no-untyped-def]
    """Every upstream request says who is calling."""
    server, seen = proxy
    session = default_session(4)
    try:
        http = UpstreamHttp(session, timeout_s=5, max_body_bytes=1000)
        await http.request("GET", str(server.make_url("/v2/users/batch/x")), headers={})
    finally:
        await session.close()
    assert seen[0].headers["User-Agent"] == USER_AGENT


async def test_webhooks_go_through_the_proxy_only_when_asked(
    proxy, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """With trust_env the webhook goes to HTTP_PROXY (the proxy's private address allowed
    by allowed_targets), carrying the User-Agent; without it the proxy is ignored; and
    through a proxy a target whose name resolves to a refused address is still refused."""
    server, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.2:{server.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    policy = TargetPolicy.build(allow_private=False, allowed_targets=["127.0.0.2", "192.0.2.10"])
    target = "http://192.0.2.10/hook"

    session = webhook_session(limit=4, policy=policy, trust_env=True)
    sender = WebhookSender(session, timeout_s=5, policy=policy, check_names=True)
    try:
        result = await sender.send(target, b"{}", {"Content-Type": "application/json"})
        assert result.status == 204, result
        assert str(seen[-1].url) == target and seen[-1].headers["User-Agent"] == USER_AGENT
        refused = await sender.send("http://localhost/hook", b"{}", {})
        assert refused.status is None and "loopback" in (refused.error or "")
    finally:
        await session.close()

    direct = webhook_session(limit=4, policy=policy)
    sender = WebhookSender(direct, timeout_s=1, policy=policy)
    try:
        before = len(seen)
        result = await sender.send(target, b"{}", {})
        assert result.status is None and len(seen) == before  # not through the proxy
    finally:
        await direct.close()


async def test_a_refused_connection_says_so_in_words() -> None:
    """A receiver that refuses the connection reads `connection failed: connection
    refused` in the attempt, not a class name."""
    from tests.e2e.harness import free_port

    policy = TargetPolicy.build(allow_private=True, allowed_targets=[])
    session = webhook_session(limit=2, policy=policy)
    sender = WebhookSender(session, timeout_s=5, policy=policy)
    try:
        result = await sender.send(f"http://127.0.0.1:{free_port()}/hook", b"{}", {})
    finally:
        await session.close()
    assert result.status is None and result.error == "connection failed: connection refused"
