"""Generic cell rate algorithm (GCRA): the pure form of the fleet-wide limiter.

The limiter that runs is the Lua twin of `gcra` in store/scripts.py (it uses Redis
server time so that every replica agrees); this function is its specification and
what the property tests check: over any window of W seconds at most
rate·W + burst requests are allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    tat_ms: float  # theoretical arrival time to store
    wait_ms: float  # when denied: how long until a request would be allowed


def emission_ms(rate_per_s: float) -> float:
    return 1000.0 / rate_per_s


def gcra(tat_ms: float | None, now_ms: float, rate_per_s: float, burst: int) -> Decision:
    """Decide one request at now_ms given the stored theoretical arrival time."""
    if rate_per_s <= 0 or not math.isfinite(rate_per_s):
        return Decision(True, tat_ms or now_ms, 0.0)
    interval = emission_ms(rate_per_s)
    tat = now_ms if tat_ms is None else max(tat_ms, now_ms)
    allow_at = tat - (burst - 1) * interval
    if now_ms < allow_at:
        return Decision(False, tat, allow_at - now_ms)
    return Decision(True, tat + interval, 0.0)


@dataclass(frozen=True)
class Reservation:
    granted: bool
    tat_ms: float  # theoretical arrival time to store
    delay_ms: float  # granted: wait this long, then send; refused: ask again after this


def reserve(
    tat_ms: float | None, now_ms: float, rate_per_s: float, burst: int, horizon_ms: float
) -> Reservation:
    """A slot for one request at most horizon_ms ahead: the claim hands out slots for
    the next moments so that a source's whole budget is used, not one burst per tick.
    The slots handed out obey the same bound as gcra: over any window of W seconds at
    most rate·W + burst of them. Pure; the Lua twin is `reserve` in store/scripts.py."""
    if rate_per_s <= 0 or not math.isfinite(rate_per_s):
        return Reservation(True, tat_ms or now_ms, 0.0)
    interval = emission_ms(rate_per_s)
    tat = now_ms if tat_ms is None else max(tat_ms, now_ms)
    send_at = max(now_ms, tat - (burst - 1) * interval)
    if send_at - now_ms > horizon_ms:
        return Reservation(False, tat, send_at - now_ms - horizon_ms)
    return Reservation(True, tat + interval, send_at - now_ms)
