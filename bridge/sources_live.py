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
    # defined, but not usable here: name → why (a key missing, a newer version's keys);
    # not polled, listed and deletable
    invalid: dict[str, str] = field(default_factory=dict)


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
        """Read what changed when the version moved (everything the first time, and when
        it went back: Redis lost its data); True when a source changed. A definition
        that cannot be used here (sealed with a key this replica lacks, or not valid to
        this version) is set aside in `invalid`, the others taken; strict (at
        start-up), one sealed with a key missing raises SealError."""
        version = await self._defs.version()
        if version == self._version:
            return False
        if version < self._version or self._version < 0:
            version, stored, deleted = await self._defs.read()
            changed_docs: dict[str, str | None] = {n: None for n in self._docs}
            changed_docs.update(stored)
            gone = set(deleted)
        else:
            version, changed_docs = await self._defs.read_since(self._version)
            gone = set(self.current.deleted) | {n for n, d in changed_docs.items() if d is None}
        configs = dict(self.current.configs)
        invalid = dict(self.current.invalid)
        docs = dict(self._docs)
        changed: set[str] = set()
        for name, sealed in changed_docs.items():
            if sealed is not None and docs.get(name) == sealed:
                continue  # the same document
            changed.add(name)
            configs.pop(name, None)
            invalid.pop(name, None)
            docs.pop(name, None)
            if name in self._static:  # a definition never shadows the config file's
                configs[name] = self._static[name]
            if sealed is None:
                continue
            docs[name] = sealed
            gone.discard(name)
            try:
                cfg = source_from_doc(self._defs.open(name, sealed))
            except SealError as exc:
                if strict:
                    raise
                invalid[name] = str(exc)
            except Exception as exc:  # not a document this version reads
                invalid[name] = f"not a valid source here: {type(exc).__name__}"
            else:
                if name not in self._static:
                    configs[name] = cfg
        for name, why in invalid.items():
            if name in changed and why not in self._unreadable:
                self._unreadable.add(why)
                log.error("source_unusable", source=name, reason=why)
        before = self.current.deleted
        self._docs, self._version = docs, version
        self.current = SourceSet(
            configs, frozenset(self._static), frozenset(gone - set(configs)), invalid
        )
        if changed or self.current.deleted != before:
            for listener in self._listeners:
                listener(self.current, changed)
        return bool(changed)
