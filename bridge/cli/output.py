"""How the admin commands print: plain tables for people, JSON for scripts."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

MAX_CELL = 48

# What a terminal would act on rather than show: C0 and C1 controls (ESC starts every
# escape sequence; C1's CSI and OSC do alone), DEL, and the bidirectional overrides
# that reorder what is shown. Upstreams and receivers write text the CLI prints.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Text safe to write to a terminal: every control character shown as an escape
    (ESC as \\x1b), never sent."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256
                            else f"\\u{ord(m[0]):04x}", text)  # fmt: skip


def print_json(data: Any, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def cell(value: Any, limit: int | None = MAX_CELL) -> str:
    """A value as table text; cut at `limit` characters (None: never, as for a record,
    where a secret shown once must be whole)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        text = ",".join(cell(v, None) for v in value) or "-"
    elif isinstance(value, dict):
        text = " ".join(f"{printable(str(k))}={cell(v, None)}" for k, v in value.items()) or "-"
    else:
        text = printable(str(value))
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: TextIO = sys.stdout) -> None:
    """Columns named by keys; a dotted key reaches into nested objects (counts.total).
    Cells are cut at MAX_CELL to keep the columns apart, except in the last column,
    which nothing follows (a description is read whole)."""
    last = len(columns) - 1
    cells = [
        [cell(_dig(row, c), None if i == last else MAX_CELL) for i, c in enumerate(columns)]
        for row in rows
    ]
    headers = [c.split(".")[-1].upper() for c in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    for line in [headers, *cells]:
        out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")
    if not cells:
        out.write("(none)\n")


def record(data: dict[str, Any], out: TextIO = sys.stdout, indent: str = "") -> None:
    """One object as `key: value` lines; nested objects indented."""
    width = max((len(k) for k in data), default=0)
    for raw_key, value in data.items():
        key = printable(str(raw_key))
        if isinstance(value, dict) and value:
            out.write(f"{indent}{key}:\n")
            record(value, out, indent + "  ")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out.write(f"{indent}{key}:\n")
            for item in value:
                out.write(f"{indent}  - {cell(item, None)}\n")
        else:
            text = cell(value, None) if value != "" else "-"
            out.write(f"{indent}{key.ljust(width)}  {text}\n")


def _dig(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
