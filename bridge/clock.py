"""The single time seam: production code asks a Clock; tests inject a FakeClock."""

from __future__ import annotations

import time
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
    """Redis server time, as the local clock plus a measured offset.

    Due times, leases, pauses and trims are all compared by replicas that each ask
    their own clock; anchoring every clock to the one Redis server means a replica
    whose wall clock is off neither delays nor steals work. The offset is measured
    from a TIME round trip (its midpoint), and measured again periodically.
    """

    def __init__(self, local: Clock | None = None) -> None:
        self._local = local or SystemClock()
        self.offset_s = 0.0

    def now(self) -> float:
        return self._local.now() + self.offset_s

    def local_now(self) -> float:
        return self._local.now()

    def adjust(self, server_s: float, sent_at: float, received_at: float) -> float:
        """Take a measurement: server time seen between two local readings. Returns
        the new offset in seconds (server minus local)."""
        self.offset_s = offset_from(server_s, sent_at, received_at)
        return self.offset_s


def offset_from(server_s: float, sent_at: float, received_at: float) -> float:
    """Server minus local time, assuming the server read its clock mid-round-trip."""
    return server_s - (sent_at + received_at) / 2
