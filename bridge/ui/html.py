"""HTML building blocks for the console. Pure: everything shown is escaped here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1c2430;background:#f6f7f9}
header{background:#1c2430;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center}
header a{color:#cfe3ff;text-decoration:none}header .who{margin-left:auto}
main{padding:1em 1.4em;max-width:1300px}h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;background:#fff;margin:.5em 0}
th,td{border-bottom:1px solid #e3e6ea;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}code,.mono{font-family:ui-monospace,monospace;font-size:.92em}
.bad{color:#b3261e}.ok{color:#1b6e3a}
.note{background:#fff7d6;border:1px solid #e8d48a;padding:.6em .8em}
.secret{background:#e8f5e9;border:1px solid #9ccc9c;padding:.6em .8em;word-break:break-all}
.error{background:#fdecea;border:1px solid #f1a9a0;padding:.6em .8em}
form.inline{display:inline}button{cursor:pointer}input,select{padding:.2em .3em}
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
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
            '<a href="/ui/deliveries">Deliveries</a>'
            '<a href="/ui/deliveries?status=dead">Dead letters</a>'
            '<a href="/ui/subscriptions">Subscriptions</a>'
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
