"""The console's watches: the list with each job's progress, registering and
deleting a watch, and a watch's page with its counts over time and every poll."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from bridge.api import event_log, watches
from bridge.api.auth import SCOPE
from bridge.api.context import CTX
from bridge.api.scope import allows
from bridge.ui import charts
from bridge.ui.common import call_api, done, html_page, notice, pairs_text, select
from bridge.ui.html import api_error, cards, e, form, page, progress_bar, table, when
from bridge.ui.session import posted, signed_in


def counts_text(counts: dict[str, Any]) -> str:
    """`12 / 100 (2 failed)`, or a dash when the job reported nothing."""
    total, ok, failed = (counts.get(k) for k in ("total", "succeeded", "failed"))
    if total is None and ok is None and failed is None:
        return "-"
    text = f"{(ok or 0) + (failed or 0)}" + (f" / {total}" if total is not None else "")
    return text + (f" ({failed} failed)" if failed else "")


def parse_pairs(text: str) -> dict[str, str] | str:
    """`key=value, key=value` as typed in the form: the map, or what is wrong."""
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            return f"metadata: expected key=value, got {item!r}"
        pairs[key.strip()] = value.strip()
    return pairs


def register_form(request: web.Request, csrf: str) -> str:
    sources = "".join(
        f"<option>{e(name)}</option>"
        for name in sorted(request.app[CTX].source_kinds)
        if allows(request.get(SCOPE), name)
    )
    fields = (
        f'<label>source <select name="source">{sources}</select></label>'
        '<label>job id <input name="job_id" size="18" required></label>'
        '<label>kind <input name="kind" size="10" placeholder="default"></label>'
        '<label>metadata <input name="metadata" size="24" placeholder="tenant=acme, run=r-17">'
        "</label> "
    )
    return form("/ui/watches", csrf, "Register", fields, inline=False).replace(
        "<form ", '<form class="stack" ', 1
    )


async def watches_page(request: web.Request) -> web.Response:
    csrf = await signed_in(request)
    query = {k: request.query[k] for k in ("state", "source", "cursor") if request.query.get(k)}
    status, listing = await call_api(request, watches.list_watches, query={**query, "limit": "100"})
    if status != 200:
        return html_page(page("Watches", api_error(listing), csrf=csrf), status)
    rows = [
        [
            f'<a href="/ui/watches/{quote(w["id"])}">{e(w["id"])}</a>',
            e(w["source"]),
            e(w["job_id"]),
            e(w["state"]),
            e(w["status"]),
            e(counts_text(w["counts"])) + progress_bar(w["counts"]),
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
    headers = ["id", "source", "job", "state", "status", "records", "polls", "next because",
               "next poll"]  # fmt: skip
    body = (
        notice(request, csrf)
        + filters
        + table(headers, rows)
        + more
        + "<h2>Register a watch</h2>"
        + register_form(request, csrf)
    )
    return html_page(page("Watches", body, csrf=csrf))


async def watch_register(request: web.Request) -> web.Response:
    csrf, fields = await posted(request)
    body: dict[str, Any] = {"source": fields.get("source", ""), "job_id": fields.get("job_id", "")}
    if fields.get("kind", "").strip():
        body["kind"] = fields["kind"].strip()
    pairs = parse_pairs(fields.get("metadata", ""))
    if isinstance(pairs, str):
        error = {"code": "invalid_request", "message": pairs}
        return html_page(page("Register a watch", api_error(error), csrf=csrf), 422)
    if pairs:
        body["metadata"] = pairs
    status, answer = await call_api(request, watches.create_watch, body=body)
    if status >= 400:
        return html_page(page("Register a watch", api_error(answer), csrf=csrf), status)
    said = "registered" if status == 201 else "was registered already"
    return done(f"/ui/watches/{quote(answer['id'])}", csrf, f"{answer['job_id']} {said}")


async def watch_delete(request: web.Request) -> web.Response:
    csrf, _ = await posted(request)
    watch_id = request.match_info["id"]
    status, answer = await call_api(request, watches.delete_watch, {"id": watch_id})
    if status >= 400:
        return done("/ui/watches", csrf, error=answer.get("code"))
    return done("/ui/watches", csrf, f"{watch_id} deleted: it is no longer polled")


async def watch_detail(request: web.Request) -> web.Response:
    csrf = await signed_in(request)
    watch_id = request.match_info["id"]
    status, w = await call_api(request, watches.get_watch, {"id": watch_id})
    if status != 200:
        return html_page(page("Watch", api_error(w), csrf=csrf), status)
    stored = await request.app[CTX].store.get_watch(watch_id)
    timeline = stored.timeline if stored else ()
    counts = w["counts"]
    figures = cards([
        ("total", counts.get("total"), ""),
        ("succeeded", counts.get("succeeded"), ""),
        ("!failed", counts.get("failed"), ""),
        ("polls", w.get("polls"), ""),
    ])  # fmt: skip
    chart = charts.progress(
        "Records done over time, each poll marked by why it was made",
        stored.progress if stored else (),
        timeline,
        counts.get("total"),
    )
    facts = [[e(k), e(w.get(k))] for k in (
        "source", "kind", "job_id", "state", "status", "outcome", "errors",
        "last_error", "created_at", "last_polled_at", "next_poll_at", "poll_reason",
        "terminal_at", "discovered")]  # fmt: skip
    facts.append(["metadata", e(pairs_text(w.get("metadata") or {}))])
    polls = [[when(t), e(why), e(found)] for t, why, found in reversed(timeline)]
    _, events = await call_api(request, event_log.events_page, query={"watch_id": watch_id})
    event_rows = [
        [f'<a href="/ui/events/{quote(ev["id"])}">{e(ev["id"])}</a>', e(ev["type"]),
         e(ev["timestamp"]), form(f"/ui/events/{quote(ev['id'])}/replay", csrf, "Replay")]
        for ev in (events or {}).get("items", [])
    ]  # fmt: skip
    delete = form(f"/ui/watches/{quote(watch_id)}/delete", csrf, "Delete this watch")
    body = (
        notice(request, csrf)
        + figures
        + progress_bar(counts)
        + chart
        + table(["field", "value"], facts)
        + "<h2>Polls (newest first) and why each was made</h2>"
        + table(["at (UTC)", "why", "found"], polls, empty="no polls yet")
        + "<h2>Events</h2>"
        + table(["id", "type", "at", ""], event_rows)
        + f'<p>{delete} <span class="muted">stops polling it; its events are kept</span></p>'
    )
    return html_page(page(f"Watch {watch_id}", body, csrf=csrf))
