"""The SSRF guard at its edges: wrapped IPv4 forms that are public, scope ids, the
URL checks one by one, and the connection-time resolver's pass-through (the ranges
and refusals themselves: test_ssrf_guard.py)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from bridge.delivery import targets
from bridge.delivery.targets import (
    GuardedResolver,
    TargetPolicy,
    TargetRefused,
    Unresolvable,
    address_refused,
    check_host,
    check_url,
    url_host,
)

GUARDED = TargetPolicy()


def test_a_wrapped_public_ipv4_address_is_public() -> None:
    """Mapped and Teredo forms are judged by the IPv4 address they carry, both ways."""
    assert address_refused("::ffff:8.8.8.8") is None
    assert address_refused("::ffff:127.0.0.1") == "loopback address 127.0.0.1"
    teredo = "2001:0:404:404::f7f7:f7f7"  # server 4.4.4.4, client 8.8.8.8 (bits inverted)
    assert ipaddress.IPv6Address(teredo).teredo is not None
    assert address_refused(teredo) is None


def test_each_refusal_says_why() -> None:
    assert address_refused("10.0.0.1") == "private address 10.0.0.1"
    assert address_refused("fe80::1%eth0") == "link-local address fe80::1"  # scope id dropped
    assert address_refused("8.8.8.8") is None


def test_allowed_networks_open_scoped_addresses_and_loose_prefixes() -> None:
    policy = TargetPolicy.build(allow_private=False, allowed_targets=["fe80::/10", "10.1.2.3/8"])
    assert policy.networks == (
        ipaddress.ip_network("fe80::/10"),
        ipaddress.ip_network("10.0.0.0/8"),
    )
    assert policy.refused("fe80::1%eth0") is None
    assert policy.refused("10.200.0.1") is None
    assert policy.refused("192.168.0.1") == "private address 192.168.0.1"
    with pytest.raises(AttributeError):
        policy.allow_private = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://h.example.com:99999/", "not a valid URL"),
        ("https:///path", "not a URL"),
        ("//host/p", "not a URL"),
        ("ftp://h.example.com/", "must be https"),
        ("https://:443/x", "has no host"),
        ("https://user@h.example.com/", "credentials in the URL"),
        ("https://:pw@h.example.com/", "credentials in the URL"),
        ("https://10.0.0.1/x", "the URL points to a private address"),
        ("https://[fe80::1]/x", "the URL points to a link-local address"),
    ],
)
def test_urls_refused_and_why(url: str, why: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        check_url(url, GUARDED)
    assert str(refused.value).startswith(why) or why in str(refused.value)
    assert "10.0.0.1" not in str(refused.value)  # the URL's own address is not repeated


def test_urls_let_through_with_their_port() -> None:
    assert check_url("https://hooks.example.com/x", GUARDED) == ("hooks.example.com", 443)
    assert check_url("https://8.8.8.8/x", GUARDED) == ("8.8.8.8", 443)
    assert check_url("https://hooks.example.com:8443/x", GUARDED) == ("hooks.example.com", 8443)
    allowed = TargetPolicy.build(allow_private=False, allowed_targets=["127.0.0.1"])
    assert check_url("http://127.0.0.1/x", allowed) == ("127.0.0.1", 80)


def test_unreadable_hosts_have_none() -> None:
    assert url_host("http://[::1") is None
    assert url_host("https://xn--a.b/") is None
    assert url_host("https://\udcff/") is None
    assert url_host("https://HOOKS.example.com/") == "hooks.example.com"


def test_a_name_that_does_not_resolve_is_unresolvable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_answer(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror("no such name")

    monkeypatch.setattr(targets.socket, "getaddrinfo", no_answer)
    with pytest.raises(Unresolvable, match="cannot resolve"):
        check_host("hooks.example.com", 443, GUARDED)


class Inner:
    """A resolver answering every name with fixed addresses; it records close()."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> Any:
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
            for a in self.addresses
        ]

    async def close(self) -> None:
        self.closed = True


async def test_the_resolver_passes_allowed_names_as_they_are() -> None:
    inner = Inner("10.0.0.5", "8.8.8.8")
    allowed = TargetPolicy.build(allow_private=False, allowed_targets=["internal.example"])
    resolver = GuardedResolver(inner, allowed)  # type: ignore[arg-type]
    every = await resolver.resolve("internal.example", 443)
    assert [r["host"] for r in every] == ["10.0.0.5", "8.8.8.8"]
    public = await resolver.resolve("other.example", 443)
    assert [r["host"] for r in public] == ["8.8.8.8"]
    await resolver.close()
    assert inner.closed
