"""Who is calling: bearer tokens, their roles, and a brake on guessing.

A request under /v1 carries `Authorization: Bearer <token>` (the scheme in any case,
any spaces before the token). The token is compared in constant time with every
configured one; the request then carries the matched token's fingerprint (`PRINCIPAL`),
so anything counted per caller (the pull feed's waiting places) counts the token, not
the spelling of its header. Nothing of a header is ever echoed or logged.

Failed attempts (a token presented and refused; a request with none is no guess) are
counted per client address: past MAX_FAILURES within FAILURE_WINDOW_S, that address
gets 429 until the window has passed, whatever it sends (a right token included:
otherwise the brake would still answer the guess). The address is the peer's, or,
from a proxy in `api.trusted_proxies`, the last one X-Forwarded-For names outside
them; IPv6 addresses count by their /64 (one host holds a whole /64).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bridge.api.context import CTX
from bridge.api.error_shape import ApiError
from bridge.api.scope import Scope
from bridge.delivery.targets import IPAddress, IPNetwork
from bridge.store.tokens import TokenStore, token_hash

PRINCIPAL: web.RequestKey[str] = web.RequestKey("principal", str)  # the token that matched
# a token made through the API: its hash, looked up again by what lasts (streams, waits)
MADE_TOKEN: web.RequestKey[str] = web.RequestKey("made_token", str)
# a token made through the API: the sources it may see (None: a config file's token)
SCOPE: web.RequestKey[Scope | None] = web.RequestKey("scope", object)  # type: ignore[arg-type]
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bridge"'}

MAX_FAILURES = 30  # failed attempts per client address within the window
FAILURE_WINDOW_S = 60.0
MAX_ADDRESSES = 10_000  # addresses remembered at most: a flood cannot grow memory


def bearer_of(header: str | None) -> bytes | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    # aiohttp hands non-ASCII bytes over as surrogates: refuse before encoding anything
    if not header or not header.isascii() or not header.isprintable():
        return None
    scheme, _, rest = header.partition(" ")
    given = rest.strip().encode()
    return given if scheme.lower() == "bearer" and given else None


def matching(given: bytes | None, tokens: tuple[str, ...]) -> str | None:
    """The configured token equal to `given` (every one compared, in constant time)."""
    found = None
    for token in tokens:
        if token and hmac.compare_digest(given or b"", token.encode()):
            found = token
    return found


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def check_token(header: str | None, tokens: tuple[str, ...]) -> str:
    """The matched token's fingerprint; 401 when the header names none of `tokens`."""
    given = bearer_of(header)
    if given is None:
        raise ApiError(401, "unauthorized", "a bearer token is required", headers=_CHALLENGE)
    token = matching(given, tokens)
    if token is None:
        raise ApiError(401, "unauthorized", "the bearer token is not valid", headers=_CHALLENGE)
    return fingerprint(token)


def authenticate(
    header: str | None, tokens: tuple[str, ...], read_tokens: tuple[str, ...]
) -> tuple[str, bool]:
    """(the matched token's fingerprint, whether it is a read token); 401 otherwise.
    An admin token that is also listed as a read token is an admin token."""
    given = bearer_of(header)
    admin, read = matching(given, tokens), matching(given, read_tokens)
    if admin is not None:
        return fingerprint(admin), False
    if read is not None:
        return fingerprint(read), True
    return check_token(header, ()), False  # raises: says what was wrong


@dataclass
class FailureBrake:
    """Failed sign-ins per client address in a fixed window; pure but for `now`."""

    max_failures: int = MAX_FAILURES
    window_s: float = FAILURE_WINDOW_S
    now: Callable[[], float] = time.monotonic
    _seen: OrderedDict[str, tuple[float, int]] = field(default_factory=OrderedDict)

    def wait_s(self, address: str) -> float:
        """Seconds this address must wait before it may try again; 0 when it may."""
        started, failures = self._seen.get(address, (0.0, 0))
        left = started + self.window_s - self.now()
        if left <= 0:
            self._seen.pop(address, None)
            return 0.0
        return left if failures >= self.max_failures else 0.0

    def failed(self, address: str) -> None:
        now = self.now()
        started, failures = self._seen.pop(address, (now, 0))
        if started + self.window_s <= now:
            started, failures = now, 0
        self._seen[address] = (started, failures + 1)
        while len(self._seen) > MAX_ADDRESSES:
            self._seen.popitem(last=False)

    def check(self, address: str) -> None:
        wait = self.wait_s(address)
        if wait > 0:
            raise ApiError(
                429,
                "too_many_failures",
                "too many failed sign-in attempts from this address; try again later",
                headers={"Retry-After": str(math.ceil(wait))},
            )


BRAKE: web.AppKey[FailureBrake] = web.AppKey("auth_brake", FailureBrake)
PROXIES: web.AppKey[tuple[IPNetwork, ...]] = web.AppKey("trusted_proxies", tuple)


def client_address(peer: str | None, forwarded_for: str | None,
                   proxies: tuple[IPNetwork, ...]) -> str:  # fmt: skip
    """Who a failed attempt is counted against. Pure."""
    address = _ip(peer)
    if address is None:
        return peer or "unknown"
    if forwarded_for and _within(address, proxies):
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            hop_ip = _ip(hop)
            if hop_ip is None:
                break  # not an address: nothing further back can be trusted
            address = hop_ip
            if not _within(hop_ip, proxies):
                break
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _ip(text: str | None) -> IPAddress | None:
    try:
        return ipaddress.ip_address((text or "").strip("[]"))
    except ValueError:
        return None


def _within(ip: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(ip.version == n.version and ip in n for n in networks)


def guarded(request: web.Request, attempt: Callable[[], Any], *, presented: bool) -> Any:
    """Run a sign-in attempt under the brake: refused at once while the address is
    held back; a refused token (ApiError 401, one was presented) is counted."""
    brake = request.config_dict[BRAKE]
    address = client_address(
        request.remote, request.headers.get("X-Forwarded-For"), request.config_dict[PROXIES]
    )
    brake.check(address)
    try:
        return attempt()
    except ApiError as exc:
        if exc.status == 401 and presented:
            brake.failed(address)
        raise


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/v1"):
        ctx = request.app[CTX]
        header = request.headers.get("Authorization")
        given = bearer_of(header)
        scope = None
        try:
            principal, read_only = guarded(
                request,
                lambda: authenticate(header, ctx.tokens, ctx.read_tokens),
                presented=False,  # counted below, once the made tokens were asked too
            )
        except ApiError as exc:
            if exc.status != 401 or given is None:
                raise
            record = await TokenStore(ctx.store).lookup(given.decode())
            if record is None:
                guarded(request, lambda: check_token(header, ()), presented=True)
                raise
            principal, read_only = f"{record.id}", record.role == "read"
            scope = Scope(record.sources)
            request[MADE_TOKEN] = token_hash(given.decode())
        if read_only and not _is_event_read(request):
            raise ApiError(403, "forbidden", "a read token may only read events")
        if scope is not None and _manages(request):
            raise ApiError(403, "forbidden", "only the config file's tokens manage tokens "
                           "and sources")  # fmt: skip
        request[PRINCIPAL] = principal
        request[SCOPE] = scope
    return await handler(request)  # type: ignore[no-any-return]


def _manages(request: web.Request) -> bool:
    """Tokens, and any change to sources (a scoped token may list its own)."""
    path = request.path.rstrip("/")
    if path == "/v1/tokens" or path.startswith("/v1/tokens/"):
        return True
    sources = path == "/v1/sources" or path.startswith("/v1/sources/")
    return sources and request.method not in ("GET", "HEAD")


async def no_store(request: web.Request, response: web.StreamResponse) -> None:
    """What a token or a session reads is nobody else's: no cache keeps it (a new
    subscription's secret, a rotated one, any answer under /v1 or /ui)."""
    if request.path.startswith(("/v1", "/ui")):
        response.headers.setdefault("Cache-Control", "no-store")


def _is_event_read(request: web.Request) -> bool:
    """The event log, one event, the long poll, the SSE stream (GETs under /v1/events)
    and the catalogue of event types."""
    path = request.path.rstrip("/")
    return request.method in ("GET", "HEAD") and (
        path in ("/v1/events", "/v1/event-types")
        or (path.startswith("/v1/events/") and path.count("/") == 3)
    )


async def still_valid(request: web.Request) -> bool:
    """Whether the token of a request that lasts (a stream, a long poll, a wait) still
    stands: one made through the API may be revoked meanwhile."""
    digest = request.get(MADE_TOKEN)
    if digest is None:
        return True
    return await TokenStore(request.app[CTX].store).lookup_hash(digest) is not None
