"""What every console page shares: the admin API's operations called in-process, the
page response with its security headers, and what an action says when it is done."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bridge.api.auth import SCOPE
from bridge.api.context import CTX, Call, Operation
from bridge.api.error_shape import ApiError
from bridge.ui.html import e


async def call_api(
    request: web.Request,
    op: Operation,
    params: dict[str, str] | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One of the admin API's operations, as its HTTP handler would run it: (status,
    answer), an error answer in the API's own shape."""
    call = Call(request.app[CTX], params or {}, query or {}, body, scope=request.get(SCOPE))
    try:
        answer = await op(call)
    except ApiError as exc:
        return exc.status, {"code": exc.code, "message": exc.message, "fields": exc.fields}
    return answer.status, answer.body


def html_page(text: str, status: int = 200) -> web.Response:
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


def done(to: str, csrf: str, message: str = "", error: Any = None) -> web.Response:
    """After an action: back to the page, saying what happened (in the query string:
    never a secret), sealed with the session's CSRF token so that a link made elsewhere
    cannot put words in the console's mouth."""
    text = str(error or message)
    fields = (("ok", message), ("code", error), ("seal", _seal(csrf, text) if text else ""))
    query = urlencode({k: v for k, v in fields if v})
    raise web.HTTPSeeOther(to + ("?" + query if query else ""))


def notice(request: web.Request, csrf: str) -> str:
    ok, code = request.query.get("ok", ""), request.query.get("code", "")
    seal = request.query.get("seal", "").encode()
    if not (ok or code) or not hmac.compare_digest(seal, _seal(csrf, code or ok).encode()):
        return ""
    if code:
        return f'<div class="error">The bridge refused: <code>{e(code)}</code></div>'
    return f'<div class="note">{e(ok)}</div>'


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
