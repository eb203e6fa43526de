"""The catalogue of event types, and the patterns subscribers filter with. Pure.

A pattern is `*` (everything), a family such as `import.*`, or one type by name. A
pattern that names nothing in the catalogue is refused with the closest valid one,
so a typo (`import.complete`) never becomes a subscription that is silently never
called.
"""

from __future__ import annotations

import difflib

CATALOGUE: dict[str, str] = {
    "import.completed": "the upstream job finished and every record was imported",
    "import.completed_with_errors": "the upstream job finished; some records failed",
    "import.failed": "the upstream job failed",
    "import.canceled": "the upstream job was canceled",
    "import.not_found": "the upstream answered 404 for the job on several polls",
    "import.expired": "the job was still running after poll.max_age; the bridge gave up",
    "import.progress": "a running job's status changed or its counts moved a step "
    "(opt-in: only subscriptions that name import.progress)",
    "source.unhealthy": "a source's credentials stopped working (401/403 after a refresh)",
    "source.recovered": "a source that was unhealthy answers again",
    "subscription.disabled": "a subscription was disabled (its receiver answered 410 Gone)",
    "ping": "a test event (POST /v1/subscriptions/{id}/test)",
}

FAMILIES = tuple(sorted({name.split(".")[0] + ".*" for name in CATALOGUE if "." in name}))


class UnknownEventType(ValueError):
    """A pattern that matches no known event type; the message suggests one that does."""


def check_pattern(pattern: str) -> str:
    """The pattern if it names known types; else UnknownEventType with a suggestion."""
    if pattern == "*" or pattern in CATALOGUE or pattern in FAMILIES:
        return pattern
    choices = [*CATALOGUE, *FAMILIES]
    close = difflib.get_close_matches(pattern, choices, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(FAMILIES)}, *)"
    raise UnknownEventType(f"not a known event type or pattern{hint}")


# Sent only to subscriptions that name them: a pattern does not opt anyone in.
OPT_IN = frozenset({"import.progress"})


def type_matches(pattern: str, event_type: str) -> bool:
    """`import.*` matches every import event; `*` everything; else the exact name. An
    opt-in type (import.progress) matches its exact name only."""
    if event_type in OPT_IN:
        return pattern == event_type
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type
