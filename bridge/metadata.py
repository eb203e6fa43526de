"""A watch's metadata: a small map of strings a pipeline passes through the bridge
(a run id, a tenant), carried in every import event's data.metadata; a subscription
may ask for watches whose metadata holds given pairs. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

MAX_PAIRS = 16
MAX_VALUE_CHARS = 256
MAX_BYTES = 1024  # the whole map as JSON
_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def problems(value: Any) -> list[str]:
    """Why a metadata map is refused (none: accepted)."""
    if not isinstance(value, dict):
        return ["metadata must be an object of strings"]
    if len(value) > MAX_PAIRS:  # one line, however many more (an answer stays small)
        return [f"at most {MAX_PAIRS} pairs ({len(value)} given)"]
    found = []
    for key, text in value.items():
        if not _KEY.fullmatch(key):
            found.append(f"key {key[:70]!r}: 1 to 64 letters, digits, '_', '.' or '-'")
        if not isinstance(text, str):
            found.append(f"{key[:70]}: the value must be a string")
        elif len(text) > MAX_VALUE_CHARS or _CONTROL.search(text):
            found.append(f"{key[:70]}: at most {MAX_VALUE_CHARS} characters, none a control one")
    if not found and len(orjson.dumps(value)) > MAX_BYTES:
        found.append(f"at most {MAX_BYTES} bytes as JSON")
    return found


def checked(value: Any) -> Any:
    """value, or ValueError naming its problems (a pydantic validator)."""
    found = problems(value) if value is not None else []
    if found:
        raise ValueError("; ".join(found))
    return value


def holds(metadata: Mapping[str, str] | None, wanted: Mapping[str, str]) -> bool:
    """Whether metadata has every pair of wanted (any metadata holds none)."""
    have = metadata or {}
    return all(have.get(k) == v for k, v in wanted.items())
