"""The console's deliveries: the list (ids are links), a delivery's page with the
request as it goes out (secrets and signatures masked) and every attempt, and the
retry and replay actions."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from bridge.api import delivery_log
from bridge.api.context import CTX, Operation
from bridge.delivery.request import masked, webhook_request
from bridge.masking import subscription_url
from bridge.ui.common import attempt_text, call_api, done, html_page, notice, select
from bridge.ui.html import api_error, e, form, link, page, table
from bridge.ui.session import posted, signed_in

SHOWN_BODY_CHARS = 20_000  # of the request body; the rest is cut, saying so


def last_attempt(d: dict[str, Any]) -> str:
    attempts = d.get("attempts") or []
    if not attempts:
        return "-"
    a = attempts[-1]
    more = f' <span class="muted">({len(attempts)} in all)</span>' if len(attempts) > 1 else ""
    return f"{e(a.get('at'))}: {e(attempt_text(a))}{more}"


async def deliveries_page(request: web.Request) -> web.Response:
    csrf = await signed_in(request)
    query = {
        k: request.query[k] for k in ("status", "subscription_id", "cursor") if request.query.get(k)
    }
    status, listing = await call_api(
        request, delivery_log.list_deliveries, query={**query, "limit": "100"}
    )
    if status != 200:
        return html_page(page("Deliveries", api_error(listing), csrf=csrf), status)
    rows = []
    for d in listing["items"]:
        action = ""
        if d["status"] in ("failed", "dead"):
            action = form(f"/ui/deliveries/{quote(d['id'])}/retry", csrf, "Retry")
        state = e(d["status"]) + (' <span class="muted">(parked)</span>' if d.get("parked") else "")
        rows.append([link("deliveries", d["id"]), state, link("events", d["event_id"]),
                     e(d["subscription_id"]), last_attempt(d), action])  # fmt: skip
    statuses = select(request, "status", ("pending", "failed", "succeeded", "dead", "superseded"))
    filters = (
        f'<form method="get" action="/ui/deliveries">status {statuses} '
        "<button>Filter</button></form>"
    )
    more = ""
    if listing.get("next_cursor"):
        nxt = urlencode({**query, "cursor": listing["next_cursor"]})
        more = f'<p><a href="/ui/deliveries?{nxt}">next page</a></p>'
    title = "Dead letters" if query.get("status") == "dead" else "Deliveries"
    headers = ["id", "status", "event", "subscription", "last attempt", ""]
    body = notice(request, csrf) + filters + table(headers, rows) + more
    return html_page(page(title, body, csrf=csrf))


async def delivery_detail(request: web.Request) -> web.Response:
    csrf = await signed_in(request)
    ctx = request.app[CTX]
    delivery_id = request.match_info["id"]
    status, d = await call_api(request, delivery_log.get_delivery, {"id": delivery_id})
    if status != 200:
        return html_page(page("Delivery", api_error(d), csrf=csrf), status)
    facts = [
        [
            "status",
            e(d["status"]) + (" (parked: its subscription is disabled)" if d["parked"] else ""),
        ],
        ["event", link("events", d["event_id"])],
        ["subscription", e(d["subscription_id"])],
        ["created at", e(d["created_at"])],
        ["next attempt at", e(d["next_attempt_at"])],
    ]
    attempts = [
        [e(a["at"]), e(a["status"]), e(f"{round(a['latency_s'] * 1000)} ms"), e(a["error"]),
         f"<code>{e(a['response_snippet'])}</code>"]
        for a in reversed(d["attempts"])
    ]  # fmt: skip
    sub = await ctx.deliveries.get_subscription(d["subscription_id"]) if ctx.deliveries else None
    event = await ctx.store.events.get_event(d["event_id"])
    if sub is None or event is None:
        gone = "its subscription is deleted" if sub is None else "its event has expired"
        request_html = f'<p class="muted">Not shown: {gone}.</p>'
    else:
        now = ctx.clock.now()
        body, headers = webhook_request(sub, event, now, int(now))
        text = body.decode(errors="replace")
        with contextlib.suppress(ValueError):  # a chat format's text stays as it is
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        if len(text) > SHOWN_BODY_CHARS:
            text = (
                text[:SHOWN_BODY_CHARS] + f"\n… cut: {len(text) - SHOWN_BODY_CHARS} more characters"
            )
        shown = [[f"<code>{e(n)}</code>", f"<code>{e(v)}</code>"] for n, v in masked(sub, headers)]
        request_html = (
            f"<p>POST <code>{e(subscription_url(sub.url, sub.format))}</code> "
            '<span class="muted">(webhook-timestamp and '
            "the signatures are made afresh for each attempt)</span></p>"
            + table(["header", "value"], shown)
            + f"<pre>{e(text)}</pre>"
        )
    actions = form(f"/ui/events/{quote(d['event_id'])}/replay", csrf, "Replay the event")
    if d["status"] in ("failed", "dead"):
        actions = form(f"/ui/deliveries/{quote(delivery_id)}/retry", csrf, "Retry") + " " + actions
    page_body = (
        notice(request, csrf)
        + table(["field", "value"], facts)
        + f"<p>{actions}</p>"
        + "<h2>Attempts (newest first)</h2>"
        + table(["at", "status", "took", "error", "response"], attempts, empty="no attempt yet")
        + "<h2>Request</h2>"
        + request_html
    )
    return html_page(page(f"Delivery {delivery_id}", page_body, csrf=csrf))


async def delivery_retry(request: web.Request) -> web.Response:
    return await _act(request, delivery_log.retry_delivery, "queued again")


async def event_replay(request: web.Request) -> web.Response:
    said = f"{request.match_info['id']} queued for every subscriber again"
    return await _act(request, delivery_log.replay_event, said)


async def _act(request: web.Request, op: Operation, said: str) -> web.Response:
    """A form's action on the object the path names; back to the page it was on."""
    csrf, _ = await posted(request)
    status, answer = await call_api(request, op, {"id": request.match_info["id"]})
    back = _back(request, "/ui/deliveries")
    if status >= 400:
        return done(back, csrf, error=answer.get("code"))
    return done(back, csrf, said)


def _back(request: web.Request, default: str) -> str:
    """Back to the console page the form was on (same origin, a path under /ui only)."""
    referer = request.headers.get("Referer", "")
    host = request.headers.get("Host", "")
    for scheme in ("http://", "https://"):
        start = f"{scheme}{host}/ui"
        if host and referer.startswith(start):
            path = referer[len(start) - 3 :].split("?", 1)[0]
            if path.startswith("/ui") and "//" not in path:
                return path
    return default
