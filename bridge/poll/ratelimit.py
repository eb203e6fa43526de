"""Generic cell rate algorithm (GCRA): the pure form of the fleet-wide limiter.

The limiter that runs is the Lua twin of `reserve` in store/lua/permit.lua (it uses Redis
server time so that every replica agrees); this function is its specification, what
the property tests check (over any window of W seconds at most rate·W + burst requests
are allowed), and a test runs both on the same inputs and compares their answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def outside_claim_wait_s(rate_per_s: float) -> float:
    """How far ahead a request outside the claim (a discovery page, a failed job's
    errors page) may take its slot. The claim reserves only a little over two ticks
    ahead, so such a request finds the next free slot within this even when polls use
    the whole budget: it takes its turn instead of giving up (at least two emission
    intervals, for a source allowed one request in many seconds)."""
    if rate_per_s <= 0 or not math.isfinite(rate_per_s):
        return 10.0
    return max(10.0, 2.0 / rate_per_s)


def limiter_burst(burst: int) -> int:
    """The burst the limiter grants of a source's configured one: about half. The rest
    is lateness the requests may have (late_allowance_s): in Python a request never
    goes out on the millisecond of its slot, and at hundreds of requests a second a
    worker's turn comes several slots late."""
    return (burst + 1) // 2


def late_allowance_s(rate_per_s: float, burst: int) -> float:
    """How late after its slot a request may still go out on that slot. The limiter
    grants at most rate·W + limiter_burst slots in any window of W seconds; requests
    each sent at most D after their slots then send at most rate·(W + D) +
    limiter_burst, within the configured rate·W + burst while D ≤ (burst -
    limiter_burst) / rate. One emission interval at least (a slot's own timer jitter;
    with a burst of 1 or 2 that is one request over, as before). Later than this, a
    request takes a fresh slot: late requests must not go out back to back."""
    if rate_per_s <= 0 or not math.isfinite(rate_per_s):
        return math.inf
    return max(1, burst - limiter_burst(burst)) / rate_per_s


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
    The slots handed out obey the GCRA bound: over any window of W seconds at
    most rate·W + burst of them. Pure; the Lua twin is `reserve` in store/lua/permit.lua."""
    if rate_per_s <= 0 or not math.isfinite(rate_per_s):
        return Reservation(True, tat_ms or now_ms, 0.0)
    interval = 1000.0 / rate_per_s  # the emission interval, ms
    tat = now_ms if tat_ms is None else max(tat_ms, now_ms)
    send_at = max(now_ms, tat - (burst - 1) * interval)
    if send_at - now_ms > horizon_ms:
        # whole ms, rounded up: asking again after delay_ms is granted, whatever the
        # rounding of now + delay
        return Reservation(False, tat, math.ceil(send_at - now_ms - horizon_ms))
    return Reservation(True, tat + interval, send_at - now_ms)
