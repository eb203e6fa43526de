"""Which hash tags the bridge's keys live under: one, or a fleet tag and partitions.

One server (and Sentinel) keeps every key under `{prefix}`: today's names. On a
cluster the per-job keys (watches, their schedule, their events) are spread over
partitions, each with a tag of its own, `{prefix/salt}`, while fleet-wide state
(a source's limiter, pause, token and health; subscriptions and deliveries)
stays under `{prefix}`. A partition's tag is chosen by the slot it
hashes to: partition i of n sits near the middle of the i-th n-th of the slot
space, so a cluster created the usual way (equal slot ranges per primary) holds
n / primaries partitions on each primary. `/` cannot occur in a key prefix, so a
partition's tag never equals another deployment's.

A watch's partition is a function of its id, itself a hash of its source, kind and
job id (store/codec.py watch_id): stable on every replica and version, never
Python's `hash()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from redis.crc import key_slot

SLOTS = 16384
# Even over 1, 2, 3, 4, 6 and 12 primaries, and a claim looks at every partition:
# a few more than primaries spreads keys, many more only costs claims (README).
CLUSTER_PARTITIONS = 12
MAX_PARTITIONS = 256
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def slot_of(tag: str) -> int:
    """The cluster slot of every key under this hash tag."""
    return int(key_slot(tag.encode()))


def _base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if not n:
            return out


@cache
def partition_tags(prefix: str, n: int) -> tuple[str, ...]:
    """The n partitions' tags (without braces), each the first salt whose slot falls
    within an eighth of a range's width of that range's middle."""
    if not 1 < n <= MAX_PARTITIONS:
        raise ValueError(f"partitions: {n} is not between 2 and {MAX_PARTITIONS}")
    width = SLOTS / n
    tolerance = max(0.5, width / 8)
    tags = []
    salt = 0
    for i in range(n):
        middle = (i + 0.5) * width
        salt = 0
        while abs(slot_of(f"{prefix}/{_base36(salt)}") + 0.5 - middle) > tolerance:
            salt += 1
        tags.append(f"{prefix}/{_base36(salt)}")
    return tuple(tags)


def partition_of(watch_id: str, n: int) -> int:
    """A watch's partition: its id's hex digest (w_ + 20 hex digits) modulo n. Ids of
    watches registered before 0.3 (random hex as well) map the same way."""
    if n <= 1:
        return 0
    try:
        return int(watch_id[2:10], 16) % n
    except ValueError:  # not a watch id (a mistyped URL): any partition answers "none"
        return 0


@dataclass(frozen=True, slots=True)
class Layout:
    """A deployment's tags: the fleet's, and its partitions' (none: one tag for all)."""

    prefix: str
    partitions: int = 1

    @property
    def tags(self) -> tuple[str, ...]:
        """The tags per-job keys live under: the prefix alone when unpartitioned."""
        if self.partitions <= 1:
            return (self.prefix,)
        return partition_tags(self.prefix, self.partitions)

    def of(self, watch_id: str) -> int:
        return partition_of(watch_id, self.partitions)
