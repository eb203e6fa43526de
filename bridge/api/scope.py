"""What a token scoped to tenants may see: the sources its patterns name (`acme-*`).
Pure. A scoped token never learns that another tenant's object exists: what its scope
does not hold is answered as if it were not there (404, or left out of a list)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bridge.model import Subscription


@dataclass(frozen=True)
class Scope:
    patterns: tuple[str, ...]

    def allows(self, source: object) -> bool:
        """Whether this source (a name) is the token's."""
        return isinstance(source, str) and any(fnmatchcase(source, p) for p in self.patterns)

    def holds(self, entries: Iterable[str]) -> bool:
        """Whether every entry of a subscription's `sources` is the token's: one of its
        own patterns exactly, or a source name (no * or ?) its patterns allow; and
        there is at least one. (A pattern is never compared with another as text:
        `t*-*` is not within `t?-*`.)"""
        listed = list(entries)
        return bool(listed) and all(self._holds(e) for e in listed)

    def _holds(self, entry: str) -> bool:
        if entry in self.patterns:
            return True
        return not any(c in entry for c in "*?[") and self.allows(entry)


def allows(scope: Scope | None, source: object) -> bool:
    """Unscoped (a config file's token): everything."""
    return scope is None or scope.allows(source)


def holds(scope: Scope | None, entries: Iterable[str]) -> bool:
    return scope is None or scope.holds(entries)


def held(scope: Scope | None, sub: Subscription) -> bool:
    """A subscription a scoped token may see and change: confined to its sources, and
    not one of the config file's (those are the operator's)."""
    return scope is None or (not sub.static and scope.holds(sub.sources))
