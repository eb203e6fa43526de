"""HTML building blocks for the console. Pure: everything shown is escaped here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

STYLE = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1c2430;background:#f6f7f9}
header{background:#1c2430;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;
gap:.4em 1.1em;align-items:center}
header a{color:#cfe3ff;text-decoration:none}header .who{margin-left:auto}
main{padding:1em 1.4em;max-width:1300px}h1{font-size:1.3em;overflow-wrap:anywhere}
h2{font-size:1.1em;margin-top:1.6em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;background:#fff;margin:.5em 0}
th,td{border-bottom:1px solid #e3e6ea;padding:.35em .5em;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
th{background:#eef1f4;font-weight:600}code,.mono{font-family:ui-monospace,monospace;font-size:.92em}
.bad{color:#b3261e}.ok{color:#1b6e3a}.muted{color:#5c6b7a}
.note{background:#fff7d6;border:1px solid #e8d48a;padding:.6em .8em}
.secret{background:#e8f5e9;border:1px solid #9ccc9c;padding:.6em .8em;word-break:break-all}
.error{background:#fdecea;border:1px solid #f1a9a0;padding:.6em .8em}
form.inline{display:inline}button{cursor:pointer}
input,select,button,textarea{padding:.2em .3em;max-width:100%}
form.stack label{display:inline-block;margin:.2em 1em .2em 0;max-width:100%}
form.stack label.wide{display:block;margin-right:0}textarea{width:100%}
.cards{display:flex;flex-wrap:wrap;gap:.6em;margin:.6em 0}
.card{background:#fff;border:1px solid #e3e6ea;padding:.5em .9em;min-width:8em}
.card b{display:block;font-size:1.4em}.card.alarm{border-color:#b3261e;color:#b3261e}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:1em}
figure{margin:.4em 0;background:#fff;border:1px solid #e3e6ea;padding:.5em;min-width:0;
max-width:760px}
svg.chart{width:100%;height:auto;display:block}
figcaption{font-size:.85em;display:flex;flex-wrap:wrap;gap:.2em 1em;margin-top:.3em}
.key i{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:-.05em}
.bar{display:flex;background:#e3e6ea;height:.7em;border-radius:.35em;overflow:hidden;
max-width:22em;min-width:5em}.bar .done{background:#3a9a5b}.bar .failed{background:#b3261e}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #e3e6ea;
padding:.6em;max-height:28em;overflow-y:auto}
@media (max-width:600px){main{padding:.6em}th,td{padding:.3em}header{padding:.5em .6em}
svg.chart text{font-size:17px}}
"""


def e(value: Any) -> str:
    """A value as escaped text; None as a dash."""
    if value is None or value == "":
        return "-"
    return escape(str(value))


def when(iso_or_ts: Any) -> str:
    if isinstance(iso_or_ts, int | float):
        return datetime.fromtimestamp(iso_or_ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return e(iso_or_ts)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str = "none") -> str:
    """Cells are HTML already (escape them with e())."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}">{escape(empty)}</td></tr>'
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def form(action: str, csrf: str, button: str, fields: str = "", inline: bool = True) -> str:
    """A POST form with its CSRF token; `fields` is HTML."""
    cls = ' class="inline"' if inline else ""
    return (
        f'<form method="post" action="{escape(action)}"{cls}>'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">{fields}'
        f"<button>{escape(button)}</button></form>"
    )


def page(title: str, body: str, *, signed_in: bool = True, csrf: str = "") -> str:
    nav = ""
    if signed_in:
        nav = (
            '<a href="/ui">Overview</a><a href="/ui/watches">Watches</a>'
            '<a href="/ui/events">Events</a><a href="/ui/deliveries">Deliveries</a>'
            '<a href="/ui/deliveries?status=dead">Dead letters</a>'
            '<a href="/ui/subscriptions">Subscriptions</a><a href="/ui/sources">Sources</a>'
            f'<span class="who">{form("/ui/logout", csrf, "Sign out")}</span>'
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} · import-job bridge</title><style>{STYLE}</style></head>"
        f"<body><header><strong>import-job bridge</strong>{nav}</header>"
        f"<main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def api_error(answer: dict[str, Any]) -> str:
    """The API's error shape {code, message, fields} as a box."""
    fields = "".join(
        f"<li><code>{e(f.get('name'))}</code>: {e(f.get('description'))}</li>"
        for f in answer.get("fields") or []
        if isinstance(f, dict)
    )
    return (
        f'<div class="error"><strong>{e(answer.get("message"))}</strong> '
        f"<code>({e(answer.get('code'))})</code>{'<ul>' + fields + '</ul>' if fields else ''}</div>"
    )


def progress_bar(counts: dict[str, Any]) -> str:
    """Records done of the total, succeeded and failed in their colours; empty text
    when the job reported no total."""
    total, ok, failed = (counts.get(k) for k in ("total", "succeeded", "failed"))
    if not total:
        return ""
    done = min(100.0, 100.0 * (ok or 0) / total)
    bad = min(100.0 - done, 100.0 * (failed or 0) / total)
    return (
        f'<div class="bar" role="img" aria-label="{done + bad:.0f}% done">'
        f'<span class="done" style="width:{done:.1f}%"></span>'
        f'<span class="failed" style="width:{bad:.1f}%"></span></div>'
    )


def cards(items: Iterable[tuple[str, Any, str]]) -> str:
    """Figures side by side: (label, value, link or ""). A label starting with ! is an
    alarm (drawn red while its value is not zero)."""
    out = []
    for label, value, href in items:
        alarm = label.startswith("!")
        cls = "card alarm" if alarm and value else "card"
        inner = f"<b>{e(value)}</b>{escape(label.lstrip('!'))}"
        if href:
            inner = f'<a href="{escape(href)}">{inner}</a>'
        out.append(f'<div class="{cls}">{inner}</div>')
    return f'<div class="cards">{"".join(out)}</div>'


def link(kind: str, value: str) -> str:
    """A link to a console page of one object: /ui/{kind}/{value}."""
    return f'<a href="/ui/{kind}/{quote(value, safe="")}">{e(value)}</a>'
