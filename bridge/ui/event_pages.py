"""The console's event browser: the event log filtered by type and source, and an
event's page with its data and its delivery to each subscriber."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote, urlencode

from aiohttp import web

from bridge.api import event_log
from bridge.api.auth import SCOPE
from bridge.api.context import CTX
from bridge.api.scope import allows, holds
from bridge.delivery.deliverer import deliveries_for
from bridge.event_types import CATALOGUE, FAMILIES
from bridge.masking import subscription_url
from bridge.store.deliveries import delivery_id
from bridge.ui.common import call_api, html_page, notice, select
from bridge.ui.html import api_error, e, form, link, page, table
from bridge.ui.session import signed_in


async def events_page(request: web.Request) -> web.Response:
    csrf = await signed_in(request)
    query = {k: request.query[k] for k in ("type", "source", "cursor") if request.query.get(k)}
    status, listing = await call_api(
        request, event_log.events_page, query={**query, "limit": "100"}
    )
    types = select(request, "type", (*FAMILIES, *CATALOGUE))
    names = (n for n in request.app[CTX].source_kinds if allows(request.get(SCOPE), n))
    sources = select(request, "source", tuple(sorted(names)))
    filters = (
        f'<form method="get" action="/ui/events">type {types} source {sources} '
        "<button>Filter</button></form>"
    )
    if status != 200:
        return html_page(page("Events", filters + api_error(listing), csrf=csrf), status)
    rows = []
    for ev in listing["items"]:
        data = ev.get("data") or {}
        watch = link("watches", ev["watch_id"]) if ev.get("watch_id") else "-"
        rows.append([link("events", ev["id"]), e(ev["type"]), e(data.get("source")),
                     e(data.get("job_id")), watch, e(ev["timestamp"])])  # fmt: skip
    more = ""
    if listing.get("next_cursor"):
        nxt = urlencode({**query, "cursor": listing["next_cursor"]})
        more = f'<p><a href="/ui/events?{nxt}">next page</a></p>'
    headers = ["id", "type", "source", "job", "watch", "at"]
    body = notice(request, csrf) + filters + table(headers, rows, empty="no events") + more
    return html_page(page("Events", body, csrf=csrf))


async def event_detail(request: web.Request) -> web.Response:
    csrf = await signed_in(request)
    ctx = request.app[CTX]
    event_id = request.match_info["id"]
    status, ev = await call_api(request, event_log.get_event, {"id": event_id})
    if status != 200:
        return html_page(page("Event", api_error(ev), csrf=csrf), status)
    facts = [
        ["type", e(ev["type"])],
        ["at", e(ev["timestamp"])],
        ["watch", link("watches", ev["watch_id"]) if ev.get("watch_id") else "-"],
    ]
    rows = []
    event = await ctx.store.events.get_event(event_id)
    if ctx.deliveries is not None and event is not None:
        # the ids fan-out gave them (a job's progress events share one per subscriber),
        # and the event's own per subscriber (a test or ping is sent to one directly)
        scope = request.get(SCOPE)
        subs = {
            s.id: s for s in await ctx.deliveries.list_subscriptions() if holds(scope, s.sources)
        }
        made = deliveries_for(event, list(subs.values()), ctx.clock.now())
        ids = dict.fromkeys([d.id for d in made] + [delivery_id(event_id, s) for s in subs])
        for found in await ctx.deliveries.get_deliveries(list(ids)):
            if found is None:
                continue
            sub = subs[found.subscription_id]
            last = found.attempts[-1] if found.attempts else None
            state = str(found.status.value)
            if found.event_id != event_id:  # the job's channel carries a newer one now
                state += f" (now carrying {found.event_id})"
            url = subscription_url(sub.url, sub.format)
            rows.append([link("deliveries", found.id), e(sub.id), e(url), e(state),
                         e(last.status if last else None)])  # fmt: skip
    replay = form(f"/ui/events/{quote(event_id)}/replay", csrf, "Replay to every subscriber")
    data = json.dumps(ev.get("data"), indent=2, ensure_ascii=False)
    body = (
        notice(request, csrf)
        + table(["field", "value"], facts)
        + f"<p>{replay}</p>"
        + "<h2>Deliveries</h2>"
        + table(
            ["delivery", "subscription", "url", "status", "last answer"],
            rows,
            empty="none: no subscriber took this event",
        )
        + f"<h2>Data</h2><pre>{escape(data)}</pre>"
    )
    return html_page(page(f"Event {event_id}", body, csrf=csrf))
