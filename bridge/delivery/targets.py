"""The SSRF guard: which webhook targets may be called.

Checked twice: when a subscription is saved (a clear 422), and at connect time on
the resolved addresses (a DNS answer that turns private later is refused then).
Only globally routable unicast addresses pass, after unwrapping the IPv6 forms that
carry an IPv4 address (mapped, 6to4, Teredo, NAT64). `delivery.allowed_targets`
names hosts or networks let through while the guard stays on for the rest.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata endpoints inside otherwise global ranges.
_METADATA = (ipaddress.ip_network("100.100.100.200/32"), ipaddress.ip_network("fd00:ec2::254/128"))
# Special-purpose ranges some Python versions count as global (IANA registries).
_SPECIAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "240.0.0.0/4",
        "fec0::/10",  # site-local
    )
)
# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use): the low 32 bits are IPv4.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class TargetRefused(ValueError):
    pass


class RefusedAddresses(OSError):
    """Raised by the guarded resolver: the connector reports it as its DNS error."""


class Unresolvable(TargetRefused):
    """The name does not resolve here and now (it may elsewhere, or later)."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the wrapping forms."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refused(address: str) -> str | None:
    """Why this IP may not be a webhook target, or None when it may. Pure."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    ip = embedded_ipv4(ip) or ip
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),  # includes 169.254.169.254, the usual metadata host
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (any(ip in net for net in _METADATA), "cloud metadata"),
        (any(ip.version == n.version and ip in n for n in _SPECIAL), "special-purpose"),
        (not ip.is_global, "non-global"),
    )
    for hit, why in checks:
        if hit:
            return f"{why} address {ip}"
    return None


@dataclass(frozen=True)
class TargetPolicy:
    """What the guard lets through: everything public; with allow_private, everything;
    and the hosts and networks named in allowed_targets."""

    allow_private: bool = False
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def build(cls, *, allow_private: bool, allowed_targets: Iterable[str] = ()) -> TargetPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in allowed_targets:
            network = parse_network(entry)
            if network is None:
                hosts.add(entry.strip().lower().rstrip("."))
            else:
                networks.append(network)
        return cls(allow_private, frozenset(hosts), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        return self.allow_private or host.lower().rstrip(".") in self.hosts

    def refused(self, address: str) -> str | None:
        if self.allow_private:
            return None
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip.version == net.version and ip in net for net in self.networks):
            return None
        return address_refused(address)


def parse_network(entry: str) -> IPNetwork | None:
    """A CIDR or a single address as a network; None for a host name."""
    try:
        return ipaddress.ip_network(entry.strip().strip("[]"), strict=False)
    except ValueError:
        return None


def url_host(url: str) -> str | None:
    """The host as the HTTP client will connect to it: yarl (aiohttp's URL type) folds
    full-width digits and ideographic full stops (U+FF11, U+3002) into an IP literal, which
    aiohttp then connects to without asking any resolver. None when unreadable."""
    try:
        host = yarl.URL(url).host
    except (ValueError, TypeError, UnicodeError):
        return None
    return host.strip("[]") if host else None


def check_url(url: str, policy: TargetPolicy) -> tuple[str, int]:
    """Refuse what is never a valid target; returns (host, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("not a valid URL") from None
    if not parts.scheme or not parts.netloc:
        raise TargetRefused("not a URL (expected https://host/path)")
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("the URL must be https")
    host = url_host(url) if parts.hostname else None
    if not host:
        raise TargetRefused("the URL has no host")
    explicit = policy.host_allowed(host) or _literal_allowed(host, policy)
    if parts.scheme == "http" and not explicit:
        raise TargetRefused(
            "the URL must be https (http only for delivery.allowed_targets, "
            "or with delivery.allow_private_targets)"
        )
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not allowed; use headers")
    if literal_ip(host) is not None and not explicit:
        why = policy.refused(host.strip("[]"))
        if why:  # "private address 10.0.0.1": the URL's own address is not repeated
            raise TargetRefused(f"the URL points to a {why.rsplit(' ', 1)[0]}")
    return host, port or (443 if parts.scheme == "https" else 80)


def _literal_allowed(host: str, policy: TargetPolicy) -> bool:
    """An IP literal named by allowed_targets (a public one is not "explicit")."""
    ip = literal_ip(host)
    return ip is not None and any(ip.version == n.version and ip in n for n in policy.networks)


def check_host(host: str, port: int, policy: TargetPolicy) -> None:
    """Resolve now and refuse when any address is not allowed."""
    if policy.host_allowed(host) or literal_ip(host) is not None:
        return  # literals were checked by check_url
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Unresolvable(f"cannot resolve {host}") from None
    for info in infos:
        why = policy.refused(str(info[4][0]))
        if why:
            raise TargetRefused(f"{host} resolves to a {why}")


class GuardedResolver(AbstractResolver):
    """Wraps aiohttp's resolver; drops addresses the guard refuses."""

    def __init__(self, inner: AbstractResolver, policy: TargetPolicy) -> None:
        self._inner = inner
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._policy.host_allowed(host):
            return results
        allowed = [r for r in results if self._policy.refused(r["host"]) is None]
        if not allowed:
            raise RefusedAddresses(f"{host} resolves only to refused addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def literal_ip(host: str) -> Any:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
