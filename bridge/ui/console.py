"""The operator console: pages over the admin API, for people who don't live in a terminal.

A sub-application (mounted at /ui) that depends on the API's context alone. Sign-in
takes an admin token once (ui/session.py); pages and actions call the admin API's own
operations in-process, so the console has exactly the API's semantics, and shows its
errors in the API's own shape. No token is ever in a URL or a page.
"""

from __future__ import annotations

from aiohttp import web

from bridge.api.context import CTX, ApiContext
from bridge.ui import (
    delivery_pages,
    event_pages,
    source_pages,
    subscription_pages,
    watch_pages,
)
from bridge.ui.common import html_page
from bridge.ui.html import page
from bridge.ui.overview import overview
from bridge.ui.session import login, login_page, logout


def build_console(ctx: ApiContext) -> web.Application:
    """The console, to mount at /ui (api/server.py)."""
    app = web.Application()
    app[CTX] = ctx
    r = app.router
    r.add_get("", overview)
    r.add_get("/login", login_page)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/watches", watch_pages.watches_page)
    r.add_post("/watches", watch_pages.watch_register)
    r.add_get("/watches/{id}", watch_pages.watch_detail)
    r.add_post("/watches/{id}/delete", watch_pages.watch_delete)
    r.add_get("/events", event_pages.events_page)
    r.add_get("/events/{id}", event_pages.event_detail)
    r.add_post("/events/{id}/replay", delivery_pages.event_replay)
    r.add_get("/deliveries", delivery_pages.deliveries_page)
    r.add_get("/deliveries/{id}", delivery_pages.delivery_detail)
    r.add_post("/deliveries/{id}/retry", delivery_pages.delivery_retry)
    r.add_get("/sources", source_pages.sources_page)
    r.add_post("/sources", source_pages.source_create)
    r.add_post("/sources/{name}/{action}", source_pages.source_action)
    r.add_get("/subscriptions", subscription_pages.subscriptions_page)
    r.add_post("/subscriptions", subscription_pages.subscription_create)
    r.add_post("/subscriptions/{id}/{action}", subscription_pages.subscription_action)
    r.add_get("/{tail:.*}", not_found)  # last: a page, not the API's JSON
    return app


async def not_found(request: web.Request) -> web.Response:
    body = '<p>There is no such page. <a href="/ui">Back to the overview</a>.</p>'
    return html_page(page("Not found", body, signed_in=False), status=404)
