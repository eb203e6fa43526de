"""The console's subscriptions: the list with each one's actions (disable, enable, test,
rotate the secret, recover dead deliveries, delete), and creating one (its secret
shown once)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from bridge.api import subscriptions
from bridge.api.context import Operation
from bridge.api.error_shape import ApiError
from bridge.masking import subscription_url
from bridge.ui.common import call_api, done, html_page, notice, pairs_text
from bridge.ui.html import api_error, e, form, page, table
from bridge.ui.session import posted, signed_in


async def subscriptions_page(request: web.Request) -> web.Response:
    csrf = await signed_in(request)
    status, listing = await call_api(
        request, subscriptions.list_subscriptions, query={"limit": "500"}
    )
    if status != 200:
        return html_page(page("Subscriptions", api_error(listing), csrf=csrf), status)
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
                ("delete", "Delete"),
            )
        )
        enabled = "yes" if s["enabled"] else '<span class="bad">no</span>'
        types = e(", ".join(s["event_types"]))
        if s.get("metadata"):  # the filter on watches' metadata, beside the types
            types += "<br>" + e("where " + pairs_text(s["metadata"]))
        rows.append(
            [
                e(s["id"]),
                e(subscription_url(s["url"], s["format"])),
                types,
                e(s["format"]),
                enabled,
                actions,
            ]
        )
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
        notice(request, csrf)
        + table(["id", "url", "event types", "format", "enabled", ""], rows)
        + "<h2>New subscription</h2>"
        + create
    )
    return html_page(page("Subscriptions", body, csrf=csrf))


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
    return html_page(page(title, body, csrf=csrf))


async def subscription_create(request: web.Request) -> web.Response:
    csrf, fields = await posted(request)
    types = [t.strip() for t in fields.get("event_types", "").split(",") if t.strip()]
    body: dict[str, Any] = {"url": fields.get("url", "")}
    if types:
        body["event_types"] = types
    status, answer = await call_api(request, subscriptions.create_subscription, body=body)
    if status != 201:
        return html_page(page("New subscription", api_error(answer), csrf=csrf), status)
    return _secret_page(csrf, "Subscription created", answer["id"], answer)


async def subscription_action(request: web.Request) -> web.Response:
    csrf, _ = await posted(request)
    sid, action = request.match_info["id"], request.match_info["action"]
    calls: dict[str, tuple[Operation, Any, dict[str, str] | None]] = {
        "enable": (subscriptions.patch_subscription, {"enabled": True}, None),
        "disable": (subscriptions.patch_subscription, {"enabled": False}, None),
        "test": (subscriptions.test_subscription, None, None),
        "rotate": (subscriptions.rotate_secret, None, None),
        "recover": (subscriptions.recover, None, {"since": "0"}),
        "delete": (subscriptions.delete_subscription, None, None),
    }
    if action not in calls:
        raise ApiError(404, "not_found", "no such action")
    op, body, query = calls[action]
    status, answer = await call_api(request, op, {"id": sid}, body, query)
    if status >= 400:
        return done("/ui/subscriptions", csrf, error=answer.get("code"))
    if action == "rotate":
        return _secret_page(csrf, "Secret rotated", sid, answer)
    messages = {
        "enable": "enabled",
        "disable": "disabled",
        "test": "a test event is on its way",
        "recover": f"{(answer or {}).get('requeued', 0)} dead deliveries queued again",
        "delete": "deleted",
    }
    return done("/ui/subscriptions", csrf, f"{sid}: {messages[action]}")
