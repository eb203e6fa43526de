"""The operator console: pages over the admin API, for people who don't live in a terminal.

A sub-application (mounted at /ui) that depends on the API's context alone. Sign-in
takes an admin token once; the browser then holds only a session id in an HttpOnly,
SameSite=Strict cookie (the session lives in Redis, so any replica serves it). Every
form carries the session's CSRF token. Pages and actions call the admin API's own
operations in-process, so the console has exactly the API's semantics, and shows its
errors in the API's own shape. No token is ever in a URL or a page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from bridge.api import delivery_log, event_log, subscriptions, watches
from bridge.api.auth import check_token, guarded
from bridge.api.context import CTX, ApiContext, Call, Operation
from bridge.api.error_shape import ApiError
from bridge.api.status import status as read_status
from bridge.ui.html import api_error, e, form, page, table, when

COOKIE = "bridge_session"
SESSION_S = 8 * 3600


def build_console(ctx: ApiContext) -> web.Application:
    """The console, to mount at /ui (api/server.py)."""
    app = web.Application()
    app[CTX] = ctx
    r = app.router
    r.add_get("", overview)
    r.add_get("/login", login_page)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/watches", watches_page)
    r.add_get("/watches/{id}", watch_detail)
    r.add_get("/deliveries", deliveries_page)
    r.add_post("/deliveries/{id}/retry", delivery_retry)
    r.add_post("/events/{id}/replay", event_replay)
    r.add_get("/subscriptions", subscriptions_page)
    r.add_post("/subscriptions", subscription_create)
    r.add_post("/subscriptions/{id}/{action}", subscription_action)
    r.add_get("/{tail:.*}", not_found)  # last: a page, not the API's JSON
    return app


async def not_found(request: web.Request) -> web.Response:
    body = '<p>There is no such page. <a href="/ui">Back to the overview</a>.</p>'
    return _html(page("Not found", body, signed_in=False), status=404)


# ------------------------------------------------------------------ sessions
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
            return csrf
    if value:
        await sessions.drop(sid)
    return None


async def _signed_in(request: web.Request) -> str:
    csrf = await _session(request)
    if csrf is None:
        raise web.HTTPSeeOther("/ui/login")
    return csrf


async def _posted(request: web.Request) -> tuple[str, dict[str, str]]:
    """A signed-in form post with a valid CSRF token: (csrf, its fields)."""
    csrf = await _signed_in(request)
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
    return _html(page("Sign in", body, signed_in=False))


async def login(request: web.Request) -> web.StreamResponse:
    data = await request.post()
    token = str(data.get("token", ""))
    try:
        guarded(
            request,
            lambda: check_token(f"Bearer {token}", request.app[CTX].tokens),
            presented=bool(token.strip()),
        )
    except ApiError as exc:
        if exc.status == 429:
            held = _html(page("Sign in", f'<div class="error">{escape(exc.message)}</div>',
                              signed_in=False), status=429)  # fmt: skip
            held.headers.update(exc.headers)
            return held
        raise web.HTTPSeeOther("/ui/login?failed=1") from None
    sid, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    await request.app[CTX].sessions.put(sid, f"{csrf} {_fingerprint(token)}", SESSION_S)
    response = web.HTTPSeeOther("/ui")
    _cookie(response, request, sid, SESSION_S)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    await _posted(request)
    await request.app[CTX].sessions.drop(request.cookies.get(COOKIE, ""))
    response = web.HTTPSeeOther("/ui/login")
    _cookie(response, request, "", 0)
    raise response


# ------------------------------------------------------------ the API, in-process
async def _api(
    request: web.Request,
    op: Operation,
    params: dict[str, str] | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One of the admin API's operations, as its HTTP handler would run it: (status,
    answer), an error answer in the API's own shape."""
    call = Call(request.app[CTX], params or {}, query or {}, body)
    try:
        answer = await op(call)
    except ApiError as exc:
        return exc.status, {"code": exc.code, "message": exc.message, "fields": exc.fields}
    return answer.status, answer.body


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


def select(request: web.Request, name: str, choices: tuple[str, ...]) -> str:
    """A filter's drop-down, with the current choice selected."""
    current = request.query.get(name, "")
    options = "".join(
        f"<option{' selected' if current == choice else ''}>{e(choice) if choice else ''}</option>"
        for choice in ("", *choices)
    )
    return f'<select name="{name}">{options}</select>'


def _seal(csrf: str, text: str) -> str:
    return hmac.new(csrf.encode(), text.encode(), hashlib.sha256).hexdigest()[:24]


def _done(to: str, csrf: str, message: str = "", error: Any = None) -> web.Response:
    """After an action: back to the page, saying what happened (in the query string:
    never a secret), sealed with the session's CSRF token so that a link made elsewhere
    cannot put words in the console's mouth."""
    text = str(error or message)
    fields = (("ok", message), ("code", error), ("seal", _seal(csrf, text) if text else ""))
    query = urlencode({k: v for k, v in fields if v})
    raise web.HTTPSeeOther(to + ("?" + query if query else ""))


def _notice(request: web.Request, csrf: str) -> str:
    ok, code = request.query.get("ok", ""), request.query.get("code", "")
    seal = request.query.get("seal", "").encode()
    if not (ok or code) or not hmac.compare_digest(seal, _seal(csrf, code or ok).encode()):
        return ""
    if code:
        return f'<div class="error">The bridge refused: <code>{e(code)}</code></div>'
    return f'<div class="note">{e(ok)}</div>'


# --------------------------------------------------------------------- pages
async def overview(request: web.Request) -> web.Response:
    csrf = await _signed_in(request)
    _, answer = await _api(request, read_status)
    w = answer["watches"]
    rows = [
        [
            e(name),
            '<span class="ok">healthy</span>'
            if info["healthy"]
            else f'<span class="bad">unhealthy</span> {e(info.get("reason"))}',
            e(info.get("budget_used")),
            e(info.get("paused_for_s")),
            e(info.get("waiting_for_budget")),
        ]
        for name, info in answer["sources"].items()
    ]
    queues = answer.get("queues", {})
    body = (
        _notice(request, csrf)
        + f"<p>Watches: {e(w['watching'])} watching ({e(w['polling_now'])} polling now, "
        f"{e(w.get('waiting_for_budget'))} waiting for budget), {e(w['finished'])} finished, "
        f"{e(w['total'])} kept.</p><h2>Sources</h2>"
        + table(["source", "health", "budget used", "429 pause (s)", "waiting"], rows)
        + "<h2>Queues</h2>"
        + table(["queue", "depth"], [[e(k), e(v)] for k, v in queues.items()])
    )
    return _html(page("Overview", body, csrf=csrf))


async def watches_page(request: web.Request) -> web.Response:
    csrf = await _signed_in(request)
    query = {k: request.query[k] for k in ("state", "source", "cursor") if request.query.get(k)}
    status, listing = await _api(request, watches.list_watches, query={**query, "limit": "100"})
    if status != 200:
        return _html(page("Watches", api_error(listing), csrf=csrf), status)
    rows = [
        [
            f'<a href="/ui/watches/{quote(w["id"])}">{e(w["id"])}</a>',
            e(w["source"]),
            e(w["job_id"]),
            e(w["state"]),
            e(w["status"]),
            e(w["polls"]),
            e(w.get("poll_reason")),
            e(w.get("next_poll_at")),
        ]
        for w in listing["items"]
    ]
    states = select(request, "state", ("watching", "terminal", "not_found", "expired"))
    filters = (
        f'<form method="get" action="/ui/watches">state {states} source <input name="source" '
        f'value="{escape(query.get("source", ""))}" size="10"> <button>Filter</button></form>'
    )
    more = ""
    if listing.get("next_cursor"):
        nxt = urlencode({**query, "cursor": listing["next_cursor"]})
        more = f'<p><a href="/ui/watches?{nxt}">next page</a></p>'
    headers = ["id", "source", "job", "state", "status", "polls", "next because", "next poll"]
    return _html(page("Watches", filters + table(headers, rows) + more, csrf=csrf))


def attempt_text(attempt: dict[str, Any]) -> str:
    """An attempt in a line: its HTTP status, the error when it says more than that
    status, the receiver's answer quoted (`404 "Not Found"`, not `404 HTTP 404 ...`)."""
    status, error, snippet = (attempt.get(k) for k in ("status", "error", "response_snippet"))
    parts = [str(status)] if status else []
    if error and error != f"HTTP {status}":
        parts.append(str(error))
    if snippet:
        parts.append(f'"{snippet}"')
    return " ".join(parts)


def pairs_text(pairs: dict[str, str]) -> str:
    """Metadata as the CLI takes it: key=value, comma separated."""
    return ", ".join(f"{k}={v}" for k, v in pairs.items())


async def watch_detail(request: web.Request) -> web.Response:
    csrf = await _signed_in(request)
    watch_id = request.match_info["id"]
    status, w = await _api(request, watches.get_watch, {"id": watch_id})
    if status != 200:
        return _html(page("Watch", api_error(w), csrf=csrf), status)
    stored = await request.app[CTX].store.get_watch(watch_id)
    timeline = stored.timeline if stored else ()
    facts = [[e(k), e(w.get(k))] for k in (
        "source", "kind", "job_id", "state", "status", "outcome", "polls", "errors",
        "last_error", "created_at", "last_polled_at", "next_poll_at", "poll_reason",
        "terminal_at", "discovered")]  # fmt: skip
    facts.append(["metadata", e(pairs_text(w.get("metadata") or {}))])
    polls = [[when(t), e(why), e(found)] for t, why, found in reversed(timeline)]
    _, events = await _api(request, event_log.events_page, query={"watch_id": watch_id})
    event_rows = [
        [e(ev["id"]), e(ev["type"]), e(ev["timestamp"]),
         form(f"/ui/events/{quote(ev['id'])}/replay", csrf, "Replay")]
        for ev in (events or {}).get("items", [])
    ]  # fmt: skip
    body = (
        table(["field", "value"], facts)
        + "<h2>Polls (newest first) and why each was made</h2>"
        + table(["at (UTC)", "why", "found"], polls, empty="no polls yet")
        + "<h2>Events</h2>"
        + table(["id", "type", "at", ""], event_rows)
    )
    return _html(page(f"Watch {watch_id}", _notice(request, csrf) + body, csrf=csrf))


async def deliveries_page(request: web.Request) -> web.Response:
    csrf = await _signed_in(request)
    query = {
        k: request.query[k] for k in ("status", "subscription_id", "cursor") if request.query.get(k)
    }
    status, listing = await _api(
        request, delivery_log.list_deliveries, query={**query, "limit": "100"}
    )
    if status != 200:
        return _html(page("Deliveries", api_error(listing), csrf=csrf), status)
    rows = []
    for d in listing["items"]:
        attempts = "<br>".join(
            f"{e(a.get('at'))}: {e(attempt_text(a))}" for a in d.get("attempts", [])[-5:]
        )
        action = ""
        if d["status"] in ("failed", "dead"):
            action = form(f"/ui/deliveries/{quote(d['id'])}/retry", csrf, "Retry")
        replay = form(f"/ui/events/{quote(d['event_id'])}/replay", csrf, "Replay")
        rows.append([e(d["id"]), e(d["status"]), e(d["event_id"]), e(d["subscription_id"]),
                     attempts or "-", action + " " + replay])  # fmt: skip
    statuses = select(request, "status", ("pending", "failed", "succeeded", "dead", "superseded"))
    filters = (
        f'<form method="get" action="/ui/deliveries">status {statuses} '
        "<button>Filter</button></form>"
    )
    title = "Dead letters" if query.get("status") == "dead" else "Deliveries"
    headers = ["id", "status", "event", "subscription", "last attempts", ""]
    return _html(page(title, _notice(request, csrf) + filters + table(headers, rows), csrf=csrf))


async def delivery_retry(request: web.Request) -> web.Response:
    csrf, _ = await _posted(request)
    status, answer = await _api(
        request, delivery_log.retry_delivery, {"id": request.match_info["id"]}
    )
    if status >= 400:
        return _done("/ui/deliveries", csrf, error=answer.get("code"))
    return _done("/ui/deliveries", csrf, "queued again")


async def event_replay(request: web.Request) -> web.Response:
    csrf, _ = await _posted(request)
    event_id = request.match_info["id"]
    status, answer = await _api(request, delivery_log.replay_event, {"id": event_id})
    if status >= 400:
        return _done("/ui/deliveries", csrf, error=answer.get("code"))
    return _done("/ui/deliveries", csrf, f"{event_id} queued for every subscriber again")


async def subscriptions_page(request: web.Request) -> web.Response:
    csrf = await _signed_in(request)
    status, listing = await _api(request, subscriptions.list_subscriptions, query={"limit": "500"})
    if status != 200:
        return _html(page("Subscriptions", api_error(listing), csrf=csrf), status)
    rows = []
    for s in listing["items"]:
        sid = quote(s["id"], safe="")
        actions = " ".join(
            form(f"/ui/subscriptions/{sid}/{action}", csrf, label)
            for action, label in (
                ("disable" if s["enabled"] else "enable", "Disable" if s["enabled"] else "Enable"),
                ("test", "Send a test"),
                ("rotate", "Rotate secret"),
                ("recover", "Recover dead"),
            )
        )
        enabled = "yes" if s["enabled"] else '<span class="bad">no</span>'
        types = e(", ".join(s["event_types"]))
        if s.get("metadata"):  # the filter on watches' metadata, beside the types
            types += "<br>" + e("where " + pairs_text(s["metadata"]))
        rows.append([e(s["id"]), e(s["url"]), types, e(s["format"]), enabled, actions])
    create = form(
        "/ui/subscriptions",
        csrf,
        "Subscribe",
        '<input name="url" placeholder="https://hooks.example.com/imports" size="40" '
        'aria-label="url"> <input name="event_types" value="import.*" size="24" '
        'aria-label="event types"> ',
        inline=False,
    )
    body = (
        _notice(request, csrf)
        + table(["id", "url", "event types", "format", "enabled", ""], rows)
        + "<h2>New subscription</h2>"
        + create
    )
    return _html(page("Subscriptions", body, csrf=csrf))


def _secret_page(csrf: str, title: str, sub_id: str, answer: dict[str, Any]) -> web.Response:
    """The secret, once; for a v1a (Ed25519) subscription also the public key that
    receivers verify with (the private whsk_ key never has to leave the bridge)."""
    body = (
        f'<div class="secret">Secret of <code>{e(sub_id)}</code>, shown only now: '
        f'<code id="secret">{e(answer.get("secret"))}</code></div>'
    )
    if answer.get("public_key"):
        body += (
            "<p>Receivers verify with this public key (shown on the subscription too): "
            f'<code id="public-key">{e(answer["public_key"])}</code></p>'
        )
    body += '<p><a href="/ui/subscriptions">Back to subscriptions</a></p>'
    return _html(page(title, body, csrf=csrf))


async def subscription_create(request: web.Request) -> web.Response:
    csrf, fields = await _posted(request)
    types = [t.strip() for t in fields.get("event_types", "").split(",") if t.strip()]
    body: dict[str, Any] = {"url": fields.get("url", "")}
    if types:
        body["event_types"] = types
    status, answer = await _api(request, subscriptions.create_subscription, body=body)
    if status != 201:
        return _html(page("New subscription", api_error(answer), csrf=csrf), status)
    return _secret_page(csrf, "Subscription created", answer["id"], answer)


async def subscription_action(request: web.Request) -> web.Response:
    csrf, _ = await _posted(request)
    sid, action = request.match_info["id"], request.match_info["action"]
    calls: dict[str, tuple[Operation, Any, dict[str, str] | None]] = {
        "enable": (subscriptions.patch_subscription, {"enabled": True}, None),
        "disable": (subscriptions.patch_subscription, {"enabled": False}, None),
        "test": (subscriptions.test_subscription, None, None),
        "rotate": (subscriptions.rotate_secret, None, None),
        "recover": (subscriptions.recover, None, {"since": "0"}),
    }
    if action not in calls:
        raise ApiError(404, "not_found", "no such action")
    op, body, query = calls[action]
    status, answer = await _api(request, op, {"id": sid}, body, query)
    if status >= 400:
        return _done("/ui/subscriptions", csrf, error=answer.get("code"))
    if action == "rotate":
        return _secret_page(csrf, "Secret rotated", sid, answer)
    messages = {
        "enable": "enabled",
        "disable": "disabled",
        "test": "a test event is on its way",
        "recover": f"{(answer or {}).get('requeued', 0)} dead deliveries queued again",
    }
    return _done("/ui/subscriptions", csrf, f"{sid}: {messages[action]}")
