"""The fleet's limiters, asked by a partition's claim (store/layout.py).

On one tag the claim script reserves each slot from a source's limiter itself. A
partition's script may not touch the fleet's keys, so a claim there first asks
lua/grant.lua for as many slots per source as it could use (its candidates), passes
what it got to the claim script, and gives back the slots it did not use
(lua/grant_return.lua): the last ones, while nobody reserved after them. A crash
between the two spends those slots: the bridge sends less than the rate for a moment,
never more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bridge.store.keys import Keys
from bridge.store.redis_errors import translated


@dataclass(frozen=True, slots=True)
class Slots:
    """One source's grant: each slot's delay (ms), how long until asking again can help
    (ms), and what giving slots back must find."""

    delays: tuple[int, ...]
    wait_ms: int
    state_after: str
    window: int


def allowance(grants: Mapping[str, Slots]) -> bytes:
    """The claim script's ARGV[5] on a partition: {source: [wait ms, delay, ...]}."""
    return orjson.dumps({s: [g.wait_ms, *g.delays] for s, g in grants.items()})


def unused(grants: Mapping[str, Slots], used: Mapping[str, int]) -> dict[str, int]:
    """Per source, the slots granted and not used (the claim takes them in order)."""
    left = {s: len(g.delays) - used.get(s, 0) for s, g in grants.items()}
    return {s: n for s, n in left.items() if n > 0}


@translated
class FleetLimiter:
    """Grants and returns slots of every source's limiter, under the fleet's tag."""

    def __init__(self, client: Any, keys: Keys, run: dict[str, Any]) -> None:
        self.client = client
        self.keys = keys
        self._grant = run["grant"]
        self._return = run["grant_return"]

    async def grant(
        self,
        wanted: Mapping[str, int],
        limits: Mapping[str, tuple[float, int]],
        horizon_ms: int,
    ) -> dict[str, Slots]:
        """Up to `wanted` slots per source within the horizon (a source without a limit
        gets them all unless paused)."""
        sources = [s for s, n in wanted.items() if n > 0]
        if not sources:
            return {}
        k = self.keys
        keys: list[str] = []
        args: list[Any] = [horizon_ms]
        for s in sources:
            rate, burst = limits.get(s, (0.0, 1))
            keys += [k.source_gcra(s), k.source_pause(s), k.source_sent(s)]
            args += [rate, burst, wanted[s]]
        flat = await self._grant(keys=keys, args=args)
        out: dict[str, Slots] = {}
        at = 0
        for s in sources:
            n = int(flat[at])
            out[s] = Slots(
                delays=tuple(int(d) for d in flat[at + 4 : at + 4 + n]),
                wait_ms=int(flat[at + 3]),
                state_after=str(flat[at + 1]),
                window=int(flat[at + 2]),
            )
            at += 4 + n
        return out

    async def give_back(
        self,
        grants: Mapping[str, Slots],
        used: Mapping[str, int],
        limits: Mapping[str, tuple[float, int]],
    ) -> None:
        """Return what a claim did not use, where nobody reserved after it."""
        left = {s: n for s, n in unused(grants, used).items() if limits.get(s, (0.0, 1))[0] > 0}
        if not left:
            return
        k = self.keys
        keys: list[str] = []
        args: list[Any] = []
        for s, n in left.items():
            g = grants[s]
            keys += [k.source_gcra(s), k.source_sent(s)]
            args += [g.state_after, n, f"{1000 / limits[s][0]:.6f}", g.window]
        await self._return(keys=keys, args=args)
