"""Which custom headers a subscription may add to its webhook requests. Pure.

Framing and hop-by-hop headers would let a subscription desynchronise a shared
connection (request smuggling) or route it to another virtual host; the signing
headers and Content-Type are the bridge's own.
"""

from __future__ import annotations

import re

# RFC 9110 §5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}")
# Visible ASCII, space and tab: no control characters, nothing a header cannot carry.
_VALUE = re.compile(r"[\t\x20-\x7e]{0,2000}")

RESERVED = frozenset(
    {
        "content-type",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        # W3C Trace Context: the bridge's own when tracing is on (tracing.py)
        "traceparent",
        "tracestate",
    }
)
HOP_BY_HOP = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "expect",
    }
)
MAX_HEADERS = 20


def header_problem(name: str, value: str) -> str | None:
    """Why this header may not be sent, or None when it may. Never echoes the value."""
    if not _TOKEN.fullmatch(name):
        return "header names are 1 to 100 letters, digits or !#$%&'*+-.^_`|~"
    lower = name.lower()
    if lower in RESERVED:
        return f"{name} is set by the bridge itself"
    if lower in HOP_BY_HOP or lower.startswith("proxy-"):
        return f"{name} is a framing or hop-by-hop header"
    if not _VALUE.fullmatch(value):
        return f"the value of {name} holds control or non-ASCII characters, or is too long"
    if value.startswith("sealed:"):  # the form of a value sealed at rest (sealing.py)
        return f"the value of {name} may not start with sealed:"
    return None


def check_headers(headers: dict[str, str]) -> list[str]:
    """Every problem of a header set, one line each."""
    problems = [p for n, v in headers.items() if (p := header_problem(n, v))]
    if len(headers) > MAX_HEADERS:
        problems.append(f"at most {MAX_HEADERS} headers")
    return problems


def sendable(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The headers that may go out (stored ones from an older version are filtered too)."""
    return {n: v for n, v in headers if header_problem(n, v) is None}
