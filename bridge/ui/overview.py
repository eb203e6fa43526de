"""The console's overview: the fleet's figures, three charts of the last hours, the
sources and the queues."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.auth import SCOPE
from bridge.api.context import CTX
from bridge.api.scope import Scope
from bridge.api.status import status as read_status
from bridge.store.trends import TrendStore
from bridge.trends import DELIVERED, DELIVERY_OUTCOMES, WINDOW_S, notice_labels
from bridge.ui import charts
from bridge.ui.common import call_api, html_page, notice
from bridge.ui.html import cards, e, page, table
from bridge.ui.session import signed_in

MOST_SOURCES = 8  # lines on the budget chart: the busiest sources


async def overview(request: web.Request) -> web.Response:
    csrf = await signed_in(request)
    ctx = request.app[CTX]
    _, answer = await call_api(request, read_status)
    scope = request.get(SCOPE)
    if scope is not None:  # a tenant's token: its sources and their budget, no more
        return html_page(page("Overview", await _tenant(request, csrf, answer, scope), csrf=csrf))
    w, queues = answer["watches"], answer.get("queues", {})
    figures = cards([
        ("watching", w["watching"], "/ui/watches?state=watching"),
        ("polling now", w["polling_now"], ""),
        ("waiting for budget", w.get("waiting_for_budget"), ""),
        ("finished", w["finished"], "/ui/watches?state=terminal"),
        ("deliveries due", queues.get("deliveries_due"), "/ui/deliveries?status=pending"),
        ("!dead letters", queues.get("deliveries_dead"), "/ui/deliveries?status=dead"),
    ])  # fmt: skip
    trends = await TrendStore(ctx.store).read(ctx.clock.now(), WINDOW_S)
    hours = f"the last {WINDOW_S // 3600} hours"
    drawn = (
        charts.histogram(
            f"Time to notice, {hours}: from the upstream's finished time to the poll that saw it",
            notice_labels(),
            trends.notice_distribution(),
            "no job ended with a finished time",
        ),
        charts.stacked(
            f"Delivery attempts by outcome, {hours}",
            trends.starts,
            trends.series(DELIVERED, DELIVERY_OUTCOMES),
            "no delivery attempts",
        ),
        charts.lines(
            f"Budget used per source (requests sent / rate_limit), {hours}",
            trends.starts,
            trends.budget_use(ctx.source_rates, MOST_SOURCES),
            "no requests to rate-limited sources",
            percent=True,
        ),
    )
    titles = ("Time to notice", "Deliveries", "Budget use")
    chart_html = "".join(f"<div><h2>{t}</h2>{c}</div>" for t, c in zip(titles, drawn, strict=True))
    body = (
        notice(request, csrf)
        + figures
        + f'<div class="charts">{chart_html}</div>'
        + _sources_table(answer)
        + "<h2>Queues</h2>"
        + table(["queue", "depth"], [[e(k), e(v)] for k, v in queues.items()])
    )
    return html_page(page("Overview", body, csrf=csrf))


async def _tenant(request: web.Request, csrf: str, answer: dict[str, Any], scope: Scope) -> str:
    """A scoped session's overview: its sources' health and budget use over time."""
    ctx = request.app[CTX]
    trends = await TrendStore(ctx.store).read(ctx.clock.now(), WINDOW_S)
    rates = {n: r for n, r in ctx.source_rates.items() if scope.allows(n)}
    chart = charts.lines(
        f"Budget used per source (requests sent / rate_limit), the last {WINDOW_S // 3600} hours",
        trends.starts,
        trends.budget_use(rates, MOST_SOURCES),
        "no requests to rate-limited sources",
        percent=True,
    )
    return notice(request, csrf) + f"<h2>Budget use</h2>{chart}" + _sources_table(answer)


def _sources_table(answer: dict[str, Any]) -> str:
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
    headers = ["source", "health", "budget used", "429 pause (s)", "waiting"]
    return "<h2>Sources</h2>" + table(headers, rows)
