"""What a token scoped to tenants may see: the sources its patterns name (`acme-*`).
Pure. A scoped token never learns that another tenant's object exists: what its scope
does not hold is answered as if it were not there (404, or left out of a list)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Scope:
    patterns: tuple[str, ...]

    def allows(self, source: object) -> bool:
        """Whether this source (a name) is the token's."""
        return isinstance(source, str) and any(fnmatchcase(source, p) for p in self.patterns)

    def holds(self, entries: Iterable[str]) -> bool:
        """Whether every entry (a name, or a pattern taken as text: `acme-eu-*` is
        within `acme-*`) is the token's, and there is at least one."""
        listed = list(entries)
        return bool(listed) and all(self.allows(e) for e in listed)


def allows(scope: Scope | None, source: object) -> bool:
    """Unscoped (a config file's token): everything."""
    return scope is None or scope.allows(source)


def holds(scope: Scope | None, entries: Iterable[str]) -> bool:
    return scope is None or scope.holds(entries)
