"""Rolling back below 0.2 (single Redis only: no earlier version ran on a cluster)."""

from __future__ import annotations

from pathlib import Path

from bridge.model import WatchKey
from bridge.store.redis import RedisStore

NOW = 1_800_000_000.0


async def test_the_rollback_script_empties_the_backlogs(store: RedisStore) -> None:
    """deploy/rollback-backlogs.lua puts every waiting watch back in the due set, where
    a version without backlogs finds it."""
    for name in ("a", "b"):
        await store.register(WatchKey("td", "users", name), NOW)
    await store.sources.pause("td", 5.0)
    assert await store.claim(NOW, 30, 10, {"td": (0.0, 1)}) == []
    script = (Path(__file__).parents[2] / "deploy" / "rollback-backlogs.lua").read_text()
    assert await store.client.eval(script, 1, store.keys.backlogs, store.keys.prefix) == 2
    assert await store.client.zcard(store.keys.due) == 2
    assert await store.backlogs() == {}
