"""The console's sources: every source (the config file's marked), defining one (its
keys as JSON, as in a [sources.NAME] table), checking its credentials, deleting one
defined here."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bridge.api import sources
from bridge.api.auth import SCOPE
from bridge.api.error_shape import ApiError
from bridge.ui.common import call_api, done, html_page, notice
from bridge.ui.html import api_error, e, form, page, table
from bridge.ui.session import posted, signed_in

PROVIDERS = ("fullstory", "talkdesk", "generic")


async def sources_page(request: web.Request) -> web.Response:
    csrf = await signed_in(request)
    status, listing = await call_api(request, sources.list_sources)
    if status != 200:
        return html_page(page("Sources", api_error(listing), csrf=csrf), status)
    rows = []
    for s in listing["items"]:
        name = quote(s["name"], safe="")
        managing = request.get(SCOPE) is None  # a tenant's session only looks
        actions = form(f"/ui/sources/{name}/check", csrf, "Check credentials") if managing else ""
        if managing and not s["static"]:
            actions += " " + form(f"/ui/sources/{name}/delete", csrf, "Delete")
        origin = "config file" if s["static"] else "defined here"
        rows.append([e(s["name"]), e(s["provider"]), e(origin), e(s.get("rate_limit")),
                     e(s.get("base_url")), actions])  # fmt: skip
    options = "".join(f"<option>{p}</option>" for p in PROVIDERS)
    fields = (
        '<label>name <input name="name" size="16" required></label>'
        f'<label>provider <select name="provider">{options}</select></label><br>'
        '<label class="wide">keys (JSON) <textarea name="keys" rows="4" cols="48" '
        'placeholder=\'{"api_key": "…", "rate_limit": 2}\'></textarea></label><br>'
    )
    create = form("/ui/sources", csrf, "Define", fields, inline=False).replace(
        "<form ", '<form class="stack" ', 1
    )
    body = notice(request, csrf) + table(
        ["name", "provider", "from", "rate limit", "base url", ""], rows
    )
    if request.get(SCOPE) is not None:
        return html_page(page("Sources", body, csrf=csrf))
    body = (
        body
        + "<h2>Define a source</h2>"
        + "<p>Its keys as in a <code>[sources.NAME]</code> table; every replica polls it "
        "within about a second. Secrets are never shown again.</p>" + create
    )
    return html_page(page("Sources", body, csrf=csrf))


async def source_create(request: web.Request) -> web.Response:
    csrf, fields = await posted(request)
    try:
        keys: Any = json.loads(fields.get("keys") or "{}")
    except ValueError:
        keys = None
    if not isinstance(keys, dict):
        error = {"code": "invalid_request", "message": 'keys: a JSON object, e.g. {"api_key": "…"}'}
        return html_page(page("Define a source", api_error(error), csrf=csrf), 422)
    body = {**keys, "name": fields.get("name", ""), "provider": fields.get("provider", "")}
    status, answer = await call_api(request, sources.create_source, body=body)
    if status >= 400:
        return html_page(page("Define a source", api_error(answer), csrf=csrf), status)
    return done("/ui/sources", csrf, f"{answer['name']} defined: every replica polls it soon")


async def source_action(request: web.Request) -> web.Response:
    csrf, _ = await posted(request)
    name, action = request.match_info["name"], request.match_info["action"]
    if action == "delete":
        status, answer = await call_api(request, sources.delete_source, {"name": name})
        if status >= 400:
            return done("/ui/sources", csrf, error=answer.get("code"))
        return done("/ui/sources", csrf, f"{name} deleted: polled no more")
    if action != "check":
        raise ApiError(404, "not_found", "no such action")
    status, answer = await call_api(request, sources.check_source, {"name": name})
    if status >= 400:
        return done("/ui/sources", csrf, error=answer.get("code"))
    verdict = "work" if answer.get("ok") else "do not work"
    return done("/ui/sources", csrf, f"{name}: the credentials {verdict}: {answer.get('reason')}")
