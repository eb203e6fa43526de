"""Lua scripts: every state change that must be atomic across replicas.

Each script is a file in store/lua/, headed by its KEYS, ARGV and return value; a
`-- uses: permit, guard` line puts the shared parts (lua/permit.lua: server time and
the limiter; lua/guard.lua: the lease check) before it. All are loaded here and
registered in one place (register_all), once per connection.

A watch is a hash {state, source, lease, prio, kind, job, at, doc} (store/codec.py):
the first four are what the scripts compare, `doc` the rest of the watch as JSON.
Scripts are idempotent where a call may be repeated: transitions are compare-and-set
on the lease token and state, and event ids are deterministic.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

LIBRARIES = ("permit", "guard", "registering")  # shared parts, not scripts of their own
_USES = re.compile(r"^-- uses: (.+)$", re.MULTILINE)


def _read() -> dict[str, str]:
    folder = resources.files("bridge.store").joinpath("lua")
    return {
        entry.name.removesuffix(".lua"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".lua")
    }


def _assemble(files: dict[str, str]) -> dict[str, str]:
    scripts = {}
    for name, text in files.items():
        if name in LIBRARIES:
            continue
        found = _USES.search(text)
        uses = [part.strip() for part in found.group(1).split(",")] if found else []
        scripts[name] = "".join(files[part] + "\n" for part in uses) + text
    return scripts


FILES = _read()
SOURCES = _assemble(FILES)


def library(name: str) -> str:
    """A shared part as written (tests run the limiter in it against its specification)."""
    return FILES[name]


def register_all(client: Any) -> dict[str, Any]:
    """Every script, registered on this client (redis-py sends EVALSHA, and loads a
    script again by itself when Redis lost it)."""
    return {name: client.register_script(source) for name, source in SOURCES.items()}
