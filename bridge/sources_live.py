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
        """Read what changed when the version moved (everything the first time); True
        when a source changed. strict (at start-up): a definition the keys cannot open
        raises SealError; later it is logged and the others are taken."""
        if await self._defs.version() == self._version:
            return False
        try:
            if self._version < 0:
                version, docs, deleted = await self._defs.read()
                changed_docs: dict[str, str | None] = dict(docs)
                gone = set(deleted)
            else:
                version, changed_docs = await self._defs.read_since(self._version)
                gone = set(self.current.deleted) | {n for n, d in changed_docs.items() if d is None}
                gone -= {n for n, d in changed_docs.items() if d is not None}
        except SealError as exc:
            if strict:
                raise
            if str(exc) not in self._unreadable:
                self._unreadable.add(str(exc))
                log.error("source_unreadable", error=str(exc))
            return False
        changed = {n for n, d in changed_docs.items() if d != self._docs.get(n)}
        configs = dict(self.current.configs)
        for name in changed:
            doc = changed_docs[name]
            configs.pop(name, None)
            if doc is None:
                self._docs.pop(name, None)
            else:
                self._docs[name] = doc
            if name in self._static:  # a definition never shadows the config file's
                configs[name] = self._static[name]
            elif doc is not None:
                try:
                    configs[name] = source_from_doc(doc)
                except ValidationError:  # written by a newer version, say: not polled
                    log.error("source_invalid", source=name)
        before = self.current.deleted
        self._version = version
        self.current = SourceSet(configs, frozenset(self._static), frozenset(gone - set(configs)))
        if changed or self.current.deleted != before:
            for listener in self._listeners:
                listener(self.current, changed)
        return bool(changed)
