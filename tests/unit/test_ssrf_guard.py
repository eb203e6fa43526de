"""The SSRF guard switched on: every range and check says why it refuses, and the
connection-time resolver refuses a name that resolves to a refused address, over a
real socket (a receiver on loopback, let through only when allowed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.delivery.sender import WebhookSender, webhook_session
from bridge.delivery.targets import TargetPolicy, address_refused


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # the usual metadata host
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("0.1.2.3", "private"),  # 0.0.0.0/8
        ("198.18.0.1", "private"),  # benchmarking
        ("240.0.0.1", "private"),
        ("100.100.100.200", "cloud metadata"),  # Alibaba's metadata host, in CGNAT space
        ("100.64.1.1", "special-purpose"),  # CGNAT
        ("192.0.0.9", "special-purpose"),  # IETF protocol assignments
        ("fec0::1", "special-purpose"),  # site-local
        ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64, well-known prefix
        ("64:ff9b:1::a00:1", "private"),  # NAT64, local-use prefix, around 10.0.0.1
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"),  # Teredo around 192.0.2.45
    ],
)
def test_each_refusal_says_why(address: str, why: str) -> None:
    """The first check an address meets names it: removing a range or a check changes
    the answer (for 100.100.100.200 and 192.0.0.9, whether it is refused at all).

    Equivalent on Python 3.11, so no address here tells them apart: the 0.0.0.0/8,
    198.18.0.0/15 and 240.0.0.0/4 entries of _SPECIAL and fd00:ec2::254 of _METADATA
    (ipaddress already counts them private, a check met first), and the `reserved` and
    `non-global` checks (no address the earlier checks let through reaches them). They
    stay for Python versions whose ipaddress tables differ."""
    assert (address_refused(address) or "").startswith(f"{why} address")


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "93.184.215.14"])
def test_public_addresses_pass(address: str) -> None:
    """Globally routable unicast addresses are targets."""
    assert address_refused(address) is None


@pytest.fixture
async def loopback_receiver() -> AsyncIterator[int]:
    async def hook(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield int(server.port or 0)
    await server.close()


async def send(policy: TargetPolicy, url: str) -> tuple[int | None, str | None]:
    session = webhook_session(limit=4, policy=policy)
    try:
        sender = WebhookSender(session, timeout_s=5, policy=policy)
        result = await sender.send(url, b"{}", {"content-type": "application/json"})
        return result.status, result.error
    finally:
        await session.close()


async def test_a_name_that_resolves_to_loopback_is_refused_at_connect(
    loopback_receiver: int,
) -> None:
    """`localhost` passes no literal check: the resolver the connector asks refuses
    every address it resolves to, and nothing reaches the receiver."""
    status, error = await send(TargetPolicy(), f"http://localhost:{loopback_receiver}/hook")
    assert status is None and "resolves only to refused addresses" in (error or "")


async def test_a_loopback_target_passes_only_when_allowed(loopback_receiver: int) -> None:
    """With the guard on, a loopback receiver is reached when allowed_targets names its
    network (by literal or by name), and refused when not."""
    guarded = TargetPolicy()
    status, error = await send(guarded, f"http://127.0.0.1:{loopback_receiver}/hook")
    assert status is None and "loopback" in (error or "")
    allowed = TargetPolicy.build(allow_private=False, allowed_targets=["127.0.0.0/8"])
    for host in ("127.0.0.1", "localhost"):
        status, error = await send(allowed, f"http://{host}:{loopback_receiver}/hook")
        assert (status, error) == (204, None), host
