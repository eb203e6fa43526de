"""The console's sessions: sign-in takes an admin token once; the browser then holds
only a session id in an HttpOnly, SameSite=Strict cookie (the session lives in Redis,
so any replica serves it). Every form carries the session's CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from html import escape

from aiohttp import web

from bridge.api.auth import SCOPE, check_token, guarded
from bridge.api.context import CTX
from bridge.api.error_shape import ApiError
from bridge.api.scope import Scope
from bridge.store.tokens import TokenStore
from bridge.ui.common import html_page
from bridge.ui.html import page

COOKIE = "bridge_session"
SESSION_S = 8 * 3600


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _session(request: web.Request) -> str | None:
    """The session's CSRF token, or None when not signed in. A session holds the
    fingerprint of the admin token it was opened with: once that token is no longer in
    api.tokens, the session is over."""
    sid = request.cookies.get(COOKIE, "")
    if not sid or len(sid) > 100 or not sid.isascii():
        return None
    sessions = request.app[CTX].sessions
    value = await sessions.get(sid)
    csrf, _, fingerprint = str(value or "").partition(" ")
    for token in request.app[CTX].tokens:
        if token and hmac.compare_digest(fingerprint.encode(), _fingerprint(token).encode()):
            request[SCOPE] = None
            return csrf
    # a token made through the API (an admin one): its tenant only, while it lasts
    record = await TokenStore(request.app[CTX].store).lookup_hash(fingerprint) if value else None
    if record is not None and record.role == "admin":
        request[SCOPE] = Scope(record.sources)
        return csrf
    if value:
        await sessions.drop(sid)
    return None


async def signed_in(request: web.Request) -> str:
    csrf = await _session(request)
    if csrf is None:
        raise web.HTTPSeeOther("/ui/login")
    return csrf


async def posted(request: web.Request) -> tuple[str, dict[str, str]]:
    """A signed-in form post with a valid CSRF token: (csrf, its fields)."""
    csrf = await signed_in(request)
    data = await request.post()
    fields = {k: str(v) for k, v in data.items() if isinstance(v, str)}
    if not hmac.compare_digest(fields.get("csrf", "").encode(), csrf.encode()):
        raise ApiError(403, "csrf_failed", "the form is stale or forged: reload the page")
    return csrf, fields


def _cookie(response: web.StreamResponse, request: web.Request, value: str, age: int) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=age,
        path="/ui",
        httponly=True,
        samesite="Strict",
        # behind a TLS-terminating proxy the request reaches us over plain http: the
        # proxy's X-Forwarded-Proto says what the browser used
        secure=request.secure or request.headers.get("X-Forwarded-Proto", "") == "https",
    )


async def login_page(request: web.Request) -> web.Response:
    body = (
        "<p>Sign in with an admin token (one of <code>api.tokens</code>). The browser keeps "
        "only a session cookie.</p>"
        '<form method="post" action="/ui/login"><input type="password" name="token" '
        'autocomplete="current-password" size="40" aria-label="admin token"> '
        "<button>Sign in</button></form>"
    )
    if request.query.get("failed"):
        body = '<div class="error">That token is not an admin token.</div>' + body
    return html_page(page("Sign in", body, signed_in=False))


async def login(request: web.Request) -> web.StreamResponse:
    data = await request.post()
    token = str(data.get("token", ""))
    try:
        try:
            guarded(
                request,
                lambda: check_token(f"Bearer {token}", request.app[CTX].tokens),
                presented=False,  # counted below, once the made tokens were asked too
            )
        except ApiError as exc:
            if exc.status != 401:
                raise
            record = await TokenStore(request.app[CTX].store).lookup(token.strip())
            if record is None or record.role != "admin":
                guarded(request, lambda: check_token("", ()), presented=bool(token.strip()))
    except ApiError as exc:
        if exc.status == 429:
            held = html_page(page("Sign in", f'<div class="error">{escape(exc.message)}</div>',
                              signed_in=False), status=429)  # fmt: skip
            held.headers.update(exc.headers)
            return held
        raise web.HTTPSeeOther("/ui/login?failed=1") from None
    sid, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    await request.app[CTX].sessions.put(sid, f"{csrf} {_fingerprint(token.strip())}", SESSION_S)
    response = web.HTTPSeeOther("/ui")
    _cookie(response, request, sid, SESSION_S)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    await posted(request)
    await request.app[CTX].sessions.drop(request.cookies.get(COOKIE, ""))
    response = web.HTTPSeeOther("/ui/login")
    _cookie(response, request, "", 0)
    raise response
