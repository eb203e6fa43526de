"""The single time seam: production code asks a Clock; tests inject a FakeClock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock unix time in seconds."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)


class ServerClock:
    """Redis server time, carried between measurements by the monotonic clock.

    Due times, leases, pauses and trims are compared by replicas that each ask their
    own clock; anchoring every one to the one Redis server means a replica whose wall
    clock is off (or steps) neither delays nor steals work. A measurement is a TIME
    round trip, taken as read at its midpoint; one whose round trip was slow (a pool
    wait, a retry, a stalled loop) is refused, and now() never goes backwards.
    """

    def __init__(
        self, local: Clock | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._local = local or SystemClock()
        self._mono = monotonic
        self._anchor: tuple[float, float] | None = None  # (server s, monotonic s) at a reading
        self._last = 0.0
        self._best_rtt_s = float("inf")
        self.offset_s = 0.0  # server time minus the local wall clock, for the skew warning

    def now(self) -> float:
        if self._anchor is None:
            value = self._local.now()
        else:
            server, mono = self._anchor
            value = server + (self._mono() - mono)
        self._last = max(self._last, value)
        return self._last

    def mark(self) -> float:
        """A monotonic reading to pass to adjust() as the round trip's start."""
        return self._mono()

    def adjust(self, server_s: float, sent_mono: float) -> bool:
        """Take a reading of server_s by a round trip that started at sent_mono. Returns
        False when refused (the round trip was too slow to be trusted)."""
        received = self._mono()
        rtt = max(0.0, received - sent_mono)
        if not accept_reading(rtt, self._best_rtt_s):
            self._best_rtt_s *= 1.5  # a network that got slower is followed, slowly
            return False
        self._best_rtt_s = min(self._best_rtt_s, rtt)
        mid = sent_mono + rtt / 2
        if self._anchor is None:  # what the local clock said before counts for nothing
            self._last = 0.0
        self._anchor = (server_s, mid)
        self.offset_s = server_s - (self._local.now() - (received - mid))
        return True


def accept_reading(rtt_s: float, best_rtt_s: float) -> bool:
    """A TIME reading is trusted when its round trip is short in absolute terms or
    close to the best seen: the midpoint is then off by at most half of it."""
    return rtt_s <= MAX_TRUSTED_RTT_S or rtt_s <= 2 * best_rtt_s


MAX_TRUSTED_RTT_S = 0.05
