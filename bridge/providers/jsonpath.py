"""Dotted JSON paths for the generic provider: `status`, `job.state`,
`metadata.counters.TOTAL[0]`. Pure.

A path is parsed once, when the config is read; reading it never raises: a missing
key, an index past the end or a step into a scalar gives None.
"""

from __future__ import annotations

import re
from typing import Any

Step = str | int
_PART = re.compile(r"^([^.\[\]]+)((?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")


class BadPath(ValueError):
    """A path that is not `name(.name)*` with optional `[n]` after a name."""


def parse_path(path: str) -> tuple[Step, ...]:
    if not path or path != path.strip():
        raise BadPath("a path is names joined by dots, e.g. job.status or items[0].state")
    steps: list[Step] = []
    for part in path.split("."):
        match = _PART.match(part)
        if not match:
            raise BadPath("a path is names joined by dots, e.g. job.status or items[0].state")
        steps.append(match.group(1))
        steps.extend(int(n) for n in _INDEX.findall(match.group(2)))
    return tuple(steps)


def get_path(data: Any, steps: tuple[Step, ...]) -> Any:
    """The value at the path, or None when the document has nothing there."""
    value = data
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return None
        elif not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    return value
