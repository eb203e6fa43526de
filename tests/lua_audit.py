"""Which keys each Lua script touched, against the keys it declared, on a real Redis.

Redis Cluster needs every key a script reads or writes in its KEYS. This watches a
real redis-server with MONITOR: Redis shows a script's EVAL/EVALSHA (with its KEYS)
just before the commands the script runs, and nothing else runs in between (a script
is atomic). For each command run by a script, COMMAND GETKEYS names its keys; any key
not among the script's KEYS is a violation. Only the bridge's own scripts
(store/lua/) are held to it: deploy/rollback-backlogs.lua is run by hand, against the
single Redis of the versions it rolls back to.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from bridge.store import scripts


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - how Redis names scripts


_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}
NAMES = {_sha(src): name for name, src in scripts.SOURCES.items()}


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x":
                out.append(chr(int(text[i + 2 : i + 4], 16)))
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_line(line: str) -> tuple[bool, list[str]] | None:
    """One MONITOR line → (run by a script?, the command's arguments)."""
    head, sep, rest = line.partition("] ")
    if not sep:
        return None
    return head.endswith(" lua"), [_unescape(m) for m in _ARG.findall(rest)]


@dataclass
class Violation:
    script: str
    command: list[str]
    key: str

    def __str__(self) -> str:
        return f"{self.script}: {' '.join(self.command[:3])} touches undeclared {self.key!r}"


@dataclass
class KeyAudit:
    """MONITOR on a real Redis while a test runs; `check()` says what was broken."""

    socket: str  # the server's unix socket
    lines: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # scripts run, by name
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(self.socket)
        self._writer.write(b"MONITOR\r\n")
        await self._writer.drain()
        assert (await self._reader.readline()).startswith(b"+OK")
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._reader is not None
        while line := await self._reader.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip("\r\n")[1:])

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()

    async def check(self, client: aioredis.Redis) -> list[Violation]:
        """Every script command seen so far, against its script's KEYS."""
        marker = "audit-" + secrets.token_hex(4)
        await client.echo(marker)
        for _ in range(500):  # MONITOR shows the marker after everything sent before it
            if any(marker in line for line in self.lines[-50:]):
                break
            await asyncio.sleep(0.01)
        found: list[Violation] = []
        declared: set[str] = set()
        script = ""
        cache: dict[tuple[str, ...], list[str]] = {}
        for line in self.lines:
            parsed = parse_line(line)
            if parsed is None or not parsed[1]:
                continue
            by_script, args = parsed
            name = args[0].upper()
            if not by_script:
                if name in ("EVALSHA", "EVAL"):
                    n = int(args[2])
                    declared = set(args[3 : 3 + n])
                    sha = args[1] if name == "EVALSHA" else _sha(args[1])
                    script = NAMES.get(sha, "")
                    self.seen.add(script)
                continue
            if not script:
                continue
            if tuple(args) not in cache:
                cache[tuple(args)] = await _keys_of(client, args)
            found += [Violation(script, args, k) for k in cache[tuple(args)] if k not in declared]
        return found


async def _keys_of(client: aioredis.Redis, args: list[str]) -> list[str]:
    try:
        return [str(k) for k in await client.command_getkeys(*args)]
    except aioredis.ResponseError:  # a command without keys (TIME)
        return []
