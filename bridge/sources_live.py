"""The sources this process polls: the config file's (static) and those defined through
the admin API (in Redis), picked up on every replica within about a second of a
change, without a restart.

Every replica reads a version counter twice a second; when it moved, it reads the
definitions again and builds only the sources whose document changed. Those who need
the set (the poller, discovery, the admin API, the metrics) are told."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from pydantic import ValidationError

from bridge.providers.config import SourceBase
from bridge.sealing import SealError
from bridge.source_defs import source_from_doc
from bridge.store.source_defs import SourceDefStore

log = structlog.get_logger()

REFRESH_EVERY_S = 0.5


@dataclass
class SourceSet:
    """One view of every source: configs by name, and which are the config file's."""

    configs: dict[str, SourceBase] = field(default_factory=dict)
    static: frozenset[str] = frozenset()
    deleted: frozenset[str] = frozenset()  # defined through the API once, deleted since


class LiveSources:
    """The static sources and the defined ones, kept current (refresh())."""

    def __init__(self, static: dict[str, SourceBase], defs: SourceDefStore) -> None:
        self._defs = defs
        self._static = dict(static)
        self._docs: dict[str, str] = {}
        self._version = -1
        self._listeners: list[Callable[[SourceSet, set[str]], None]] = []
        self._unreadable: set[str] = set()
        self.current = SourceSet(dict(static), frozenset(static))

    def on_change(self, listener: Callable[[SourceSet, set[str]], None]) -> None:
        """listener(the set, the names whose config changed, came or went)."""
        self._listeners.append(listener)

    async def refresh(self, *, strict: bool = False) -> bool:
        """Read the definitions when their version moved; True when anything changed.
        strict (at start-up): a definition the keys cannot open raises SealError."""
        if await self._defs.version() == self._version:
            return False
        try:
            version, docs, deleted = await self._defs.read()
        except SealError as exc:
            if strict:
                raise
            if str(exc) not in self._unreadable:
                self._unreadable.add(str(exc))
                log.error("source_unreadable", error=str(exc))
            return False
        changed = {n for n in set(docs) | set(self._docs) if docs.get(n) != self._docs.get(n)}
        configs = dict(self.current.configs)
        for name in changed:
            configs.pop(name, None)
            if name in self._static:  # a definition never shadows the config file's
                configs[name] = self._static[name]
            elif name in docs:
                try:
                    configs[name] = source_from_doc(docs[name])
                except ValidationError:  # written by a newer version, say: not polled
                    log.error("source_invalid", source=name)
        before = self.current.deleted
        self._docs, self._version = docs, version
        self.current = SourceSet(
            configs, frozenset(self._static), frozenset(deleted - set(configs))
        )
        if changed or self.current.deleted != before:
            for listener in self._listeners:
                listener(self.current, changed)
        return bool(changed)
