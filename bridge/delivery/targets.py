"""The SSRF guard: which webhook targets may be called.

Checked twice: when a subscription is saved (a clear 422), and at connect time on
the resolved addresses (a DNS answer that turns private later is refused then).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

# Cloud metadata endpoints not covered by the generic ranges below.
_METADATA = (ipaddress.ip_network("100.100.100.200/32"), ipaddress.ip_network("fd00:ec2::254/128"))


class TargetRefused(ValueError):
    pass


def address_refused(address: str) -> str | None:
    """Why this IP may not be a webhook target, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
        ip = ip.sixtofour
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_private, "private"),
        (ip.is_link_local, "link-local"),  # includes 169.254.169.254, the usual metadata host
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_reserved, "reserved"),
        (any(ip in net for net in _METADATA), "cloud metadata"),
    )
    for hit, why in checks:
        if hit:
            return f"{why} address {ip}"
    return None


def check_url(url: str, *, allow_private: bool) -> tuple[str, int]:
    """Refuse what is never a valid target; returns (host, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("not a valid URL") from None
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("the URL must be https")
    if parts.scheme == "http" and not allow_private:
        raise TargetRefused("the URL must be https (http only with delivery.allow_private_targets)")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not allowed; use headers")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_host(host: str, port: int, *, allow_private: bool) -> None:
    """Resolve now and refuse when any address is not public."""
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise TargetRefused(f"cannot resolve {host}") from None
    for info in infos:
        why = address_refused(str(info[4][0]))
        if why:
            raise TargetRefused(f"{host} resolves to a {why}")


class GuardedResolver(AbstractResolver):
    """Wraps aiohttp's resolver; drops addresses the guard refuses."""

    def __init__(self, inner: AbstractResolver, *, allow_private: bool) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed = [r for r in results if address_refused(r["host"]) is None]
        if not allowed:
            raise OSError(f"{host} resolves only to refused addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def literal_ip(host: str) -> Any:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
