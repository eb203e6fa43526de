"""The watch store: registering, claiming, rescheduling and finishing watches, on the
connection every store shares (with `sources`, per-source state, and `events`, events
and the outbox, built on it). Times passed in are unix seconds from the caller's
Clock; the limiter, pauses and leases compare on Redis server time (lua/permit.lua).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError, NoScriptError

from bridge.clock import to_ms
from bridge.errors import StoreError
from bridge.model import Event, Watch, WatchKey, WatchState
from bridge.sealing import Sealer
from bridge.store import codec, scripts
from bridge.store.coalescer import Coalescer
from bridge.store.connection import close_client
from bridge.store.grants import FleetLimiter, Slots, allowance
from bridge.store.keys import Keys
from bridge.store.outbox import EventStore
from bridge.store.paging import Cursor, IndexPager
from bridge.store.pipelined import run_scripts
from bridge.store.redis_errors import translated
from bridge.store.sources import SourceStore
from bridge.store.verdicts import Verdict

# Under contention a new watch goes before those overdue by less than this (its first
# poll is the one most worth making); nobody waits behind new ones longer than this.
NEW_WATCH_HEAD_START_S = 300.0  # the default poll.max_interval
# How many due watches one claim looks through at most for ones whose source has budget.
LOOK_PAST = 1000
# A claim uses the candidates read with the previous one only this soon after.
READ_AHEAD_MAX_AGE_S = 0.5
# Sources whose limiter keys are kept built (more are built on each claim).
SOURCE_KEYS_KEPT = 100_000
# Up to this many sources with a limit, a claim names them all (each takes its turn);
# beyond, only the ready ones (KEYS.ready) and those its due watches belong to.
FEW_SOURCES = 64
# Watch id → source, learned from what the store wrote and read (claims of many sources
# name the sources of their due watches): emptied beyond this many.
SOURCES_OF_WATCHES_KEPT = 200_000


T = TypeVar("T")


@dataclass(frozen=True)
class Claimed:
    watch: Watch
    token: int
    delay_s: float = 0.0  # the source's limiter reserved a slot this far ahead
    granted_at: float | None = None  # monotonic, just before the script that granted it
    slot_at: float | None = None  # that slot on this process's monotonic clock (the pool's)
    held_until: float | None = None  # the lease's end on that clock (a little before)


@dataclass(frozen=True)
class Candidates:
    """What a claim looks at, read before it (RedisStore._claim_round)."""

    limits: dict[str, Any]  # the limits it was read for (the caller's object: no copy)
    read_ms: int  # when (the claim's clock)
    limit: int
    scan: int
    expired: list[str]
    due: list[str]
    read_all: bool  # every due watch then was read
    ready: list[str]  # sources with a backlog whose limiter may grant soon, first first
    heads: dict[str, list[str]]
    unmarked: bool  # more sources have a backlog than a place in ready (an older writer)


class Less(Mapping[str, int]):
    """A count per source less what was taken, never below zero; computed when asked
    (a claim among thousands of sources asks of a few)."""

    def __init__(self, base: Mapping[str, int], taken: Mapping[str, int]) -> None:
        self._base = base
        self._taken = taken

    def __getitem__(self, source: str) -> int:
        return max(0, self._base[source] - self._taken.get(source, 0))

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


def _room_for(room: WorkerRoom | None, source: str) -> int:
    """How many of a source's watches a claim may take for the caller's workers (the
    script's bound): a partition asks the fleet for no more slots than that."""
    if room is None or source not in room.own:
        return LOOK_PAST
    bound = room.own[source] + room.shared
    most = room.most.get(source) if room.most is not None else None
    return bound if most is None else min(bound, most)


@dataclass(frozen=True)
class WorkerRoom:
    """What one claim may take of the caller's free workers: per source, those kept
    for it (own) and its cap (most, when it has one); then the room all share."""

    own: Mapping[str, int]
    shared: int
    most: Mapping[str, int] | None = None

    def limits(self, source: str) -> list[int]:
        if source not in self.own:
            return []
        most = self.most.get(source) if self.most else None
        return [self.own[source]] if most is None else [self.own[source], most]

    def after(self, taken: Counter[str]) -> WorkerRoom:
        """The room left once a round of the claim took these (per source)."""
        spilled = sum(max(0, n - self.own[s]) for s, n in taken.items() if s in self.own)
        return WorkerRoom(
            own=Less(self.own, taken),
            shared=max(0, self.shared - spilled),
            most=None if self.most is None else Less(self.most, taken),
        )


@translated
class RedisStore:
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        head_start_s: float = NEW_WATCH_HEAD_START_S,
        sealer: Sealer | None = None,
        *,
        tag: str | None = None,
        limiter: FleetLimiter | None = None,
    ) -> None:
        """tag: a partition's (store/layout.py), whose claims ask `limiter` for their
        slots (store/grants.py); None: every key under the prefix's tag."""
        self.client = client
        self.keys = Keys(prefix, tag)
        self._limiter = limiter
        # secrets written to Redis are sealed with it, read back through it (sealing.py)
        self.sealer = sealer or Sealer()
        # New registrations count as due this much earlier: the poll worth most goes
        # first, and nothing is passed over for longer (the daemon: poll.max_interval).
        self.head_start_s = head_start_s
        self.scripts = scripts.register_all(client)  # every script, for every store
        run = self.scripts
        self._register = run["register"]
        self._register_many = run["register_many"]
        self._claim = run["claim"]
        self._heads = run["heads"]
        self._time = run["time"]
        self._reschedule = run["reschedule"]
        self._finish = run["finish"]
        self._delete = run["delete"]
        self._reschedule_many = run["reschedule_many"]
        self._reschedules: Coalescer[list[str], Verdict] = Coalescer(self._flush_reschedules)
        self._ahead: Candidates | None = None  # read with the last claim, for the next
        self._source_keys: dict[str, list[str]] = {}  # _limiter_keys, built once a source
        self._source_of: dict[str, str] = {}  # watch id → source (SOURCES_OF_WATCHES_KEPT)
        self._finishes: Coalescer[tuple[list[str], list[str]], Verdict | BaseException] = Coalescer(
            self._flush_finishes
        )

        self.pager = IndexPager(client, self.scripts["page"])
        self.sources = SourceStore(client, self.keys, self.scripts, self.sealer)  # per source
        self.events = EventStore(client, self.keys, self.pager)  # events and the outbox

    async def close(self) -> None:
        await close_client(self.client)

    async def ping(self) -> bool:
        """Whether the server that holds the bridge's keys answers (on a cluster, the
        node of their slot: a PING would go to any node)."""
        await self.server_time()
        return True

    async def is_cluster_node(self) -> bool:
        """Whether the server is a node of a Redis Cluster (asked of one server only);
        False when the user may not ask (INFO is in ACL's @dangerous, which the README
        suggests taking from the bridge's user)."""
        try:
            info = await self.client.info("cluster")
        except NoPermissionError:
            return False
        return bool(int(info.get("cluster_enabled", 0)))

    async def server_time(self) -> float:
        """Redis server time in unix seconds."""
        secs, micros = await self._time(keys=[self.keys.marker])
        return int(secs) + int(micros) / 1e6

    async def claim_marker(self, value: str) -> bool:
        """Write the data marker unless it exists; True when this call wrote it (a new
        deployment, or a Redis that lost its data)."""
        return bool(await self.client.set(self.keys.marker, value, nx=True))

    async def rewrite_aof(self) -> bool:
        """Ask Redis to rewrite its append-only file (older forms of sealed values go);
        False when it may not (an ACL without the command, a managed service)."""
        try:
            await self.client.bgrewriteaof()
        except Exception:  # said to the operator by the caller
            return False
        return True

    async def get_marker(self) -> str | None:
        value = await self.client.get(self.keys.marker)
        return None if value is None else str(value)

    # ---------------------------------------------------------------- watches
    async def register(
        self, key: WatchKey, now: float, metadata: dict[str, str] | None = None
    ) -> tuple[Watch, bool]:
        """Start watching; returns the watch and whether it is new (idempotent: a job
        already watched keeps its metadata). A job whose watch an operator deleted is
        watched again."""
        watch, outcome = await self._register_as(key, now, discovered=False, metadata=metadata)
        return watch, outcome == "created"

    async def register_many(
        self,
        keys: list[WatchKey],
        now: float,
        metadata: list[dict[str, str] | None] | None = None,
    ) -> list[tuple[Watch, bool]]:
        """Many registrations in one round trip (the batch endpoint); each answer as
        `register` gives it, in order (metadata: per key, when given). Jobs already
        watched cost a second round trip together, to read their watches."""
        metas = metadata or [None] * len(keys)
        fresh = [
            self._new_watch(key, now, discovered=False, metadata=meta)
            for key, meta in zip(keys, metas, strict=True)
        ]
        if not fresh:
            return []
        k = self.keys
        script_keys = [k.due, k.watches]
        args: list[str | int] = [to_ms(now), to_ms(self.head_start_s)]
        for w in fresh:
            hash_key = k.watch(w.id)
            script_keys += [k.watch_key(w.source, w.kind, w.job_id), hash_key, hash_key]
            args += [w.id, w.source, *codec.identity_fields(w), codec.watch_to_doc(w), "", "0"]
        flat = await self._register_many(keys=script_keys, args=args)
        results = [(int(flat[i]), str(flat[i + 1]), flat[i + 2]) for i in range(0, len(flat), 3)]
        for w in fresh:
            self._note_source(w.id, w.source)
        out: list[tuple[Watch, bool] | None] = [
            (replace(w, lease=int(r[2])), True) if r[0] == 1 else None
            for w, r in zip(fresh, results, strict=True)
        ]
        held = [i for i, r in enumerate(results) if r[0] in (0, 3)]  # watched already
        if held:
            pipe = self.client.pipeline(transaction=False)
            for i in held:
                pipe.hmget(self.keys.watch(results[i][1]), codec.RECORD_FIELDS)
            for i, fields in zip(held, await pipe.execute(), strict=True):
                watch = codec.watch_from_record(results[i][1], fields)
                if watch is not None:
                    out[i] = (watch, False)
        for i, answer in enumerate(out):
            if answer is None:  # a lookup key naming a watch that is gone: one at a time
                out[i] = await self.register(keys[i], now, metas[i])
        return [answer for answer in out if answer is not None]

    async def register_discovered(self, key: WatchKey, now: float) -> bool:
        """Watch a job that discovery found; False when already watched, or when an
        operator deleted its watch (within poll.retention): discovery leaves it be."""
        _, outcome = await self._register_as(key, now, discovered=True)
        return outcome == "created"

    async def discovered_since(self, source: str, since: float) -> int:
        """How many jobs discovery watched for the source since `since` (older notes
        are dropped: their watches have expired)."""
        key = self.keys.source_discovered(source)
        pipe = self.client.pipeline(transaction=False)
        pipe.zremrangebyscore(key, "-inf", f"({to_ms(since)}")
        pipe.zcard(key)
        _, count = await pipe.execute()
        return int(count)

    async def note_discovered(self, key: WatchKey, now: float, keep_s: float) -> None:
        k = self.keys.source_discovered(key.source)
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(k, {f"{key.kind}:{key.job_id}": to_ms(now)})
        pipe.pexpire(k, to_ms(keep_s))
        await pipe.execute()

    async def was_discovered(self, key: WatchKey) -> bool:
        member = f"{key.kind}:{key.job_id}"
        return await self.client.zscore(self.keys.source_discovered(key.source), member) is not None

    def _new_watch(
        self,
        key: WatchKey,
        now: float,
        *,
        discovered: bool,
        metadata: dict[str, str] | None = None,
    ) -> Watch:
        return Watch(
            id=codec.watch_id(key.source, key.kind, key.job_id),
            source=key.source,
            kind=key.kind,
            job_id=key.job_id,
            state=WatchState.WATCHING,
            created_at=to_ms(now) / 1000,  # as the record keeps it
            next_poll_at=to_ms(now) / 1000,
            poll_reason="age",  # polled at once: its age is zero
            discovered=discovered,
            metadata=metadata or None,
        )

    def _register_call(
        self, watch: Watch, expected: str, now: float
    ) -> tuple[list[str], list[str | int]]:
        """REGISTER's keys and arguments; `expected`: the watch the caller expects the
        job's legacy lookup key to name ("" for none)."""
        k = self.keys
        keys = [
            k.watch_key(watch.source, watch.kind, watch.job_id),
            k.watch(watch.id),
            k.due,
            k.watches,
            k.watch(expected or watch.id),
        ]
        args: list[str | int] = [
            watch.id,
            to_ms(now),
            watch.source,
            *codec.identity_fields(watch),
            codec.watch_to_doc(watch),
            expected,
            to_ms(self.head_start_s),
            "1" if watch.discovered else "0",
        ]
        return keys, args

    async def _register_as(
        self,
        key: WatchKey,
        now: float,
        *,
        discovered: bool,
        metadata: dict[str, str] | None = None,
    ) -> tuple[Watch, str]:
        """(the watch, 'created' | 'existing' | 'skipped')."""
        watch = self._new_watch(key, now, discovered=discovered, metadata=metadata)
        expected = ""  # the common case: a job not watched yet
        for _ in range(3):
            keys, args = self._register_call(watch, expected, now)
            created, watch_id, lease = await self._register(keys=keys, args=args)
            self._note_source(str(watch_id or watch.id), key.source)
            if int(created) == 1:
                return replace(watch, lease=int(lease)), "created"
            if int(created) == 2:
                return watch, "skipped"
            existing = await self.get_watch(str(watch_id))
            if existing is not None:
                return existing, "existing"
            # a legacy lookup key names a watch that is gone (evicted, expired
            # meanwhile): ask again with its hash declared, and the script drops it
            expected = str(watch_id)
        raise StoreError("a job's lookup key kept changing while it was registered")

    async def waiting_for_budget(self, watches: list[Watch]) -> dict[str, str]:
        """The watches among these that wait in their source's backlog (due, but given
        no slot yet), each with why: `paused` (a 429 pause) or `rate_limited`."""
        watching = [w for w in watches if w.state is WatchState.WATCHING]
        if not watching:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for w in watching:
            pipe.zscore(self.keys.source_backlog(w.source), w.id)
        scores = await pipe.execute()
        waiting = [w for w, score in zip(watching, scores, strict=True) if score is not None]
        paused = {
            src for src in {w.source for w in waiting} if await self.sources.pause_left(src) > 0
        }
        return {w.id: "paused" if w.source in paused else "rate_limited" for w in waiting}

    async def get_watch(self, watch_id: str) -> Watch | None:
        fields = await self.client.hmget(self.keys.watch(watch_id), codec.RECORD_FIELDS)
        return codec.watch_from_record(watch_id, fields)

    async def find_watch(self, key: WatchKey) -> Watch | None:
        """A job's watch: by the id its job gives, else (registered by 0.2) through its
        lookup key."""
        watch = await self.get_watch(codec.watch_id(key.source, key.kind, key.job_id))
        if watch is not None:
            return watch
        legacy = await self.client.get(self.keys.watch_key(key.source, key.kind, key.job_id))
        return None if legacy in (None, "deleted") else await self.get_watch(str(legacy))

    async def list_watches(
        self,
        *,
        state: WatchState | None = None,
        source: str | None = None,
        kind: str | None = None,
        cursor: Cursor | None = None,
        limit: int = 50,
        sources: Callable[[str], bool] | None = None,
    ) -> tuple[list[Watch], Cursor | None]:
        """Watches oldest first; the cursor is (created ms, id) of the last one returned.
        sources: only watches of the sources it says yes to (a scoped token's)."""

        def keep(w: Watch) -> bool:
            return (
                (state is None or w.state == state)
                and (source is None or w.source == source)
                and (kind is None or w.kind == kind)
                and (sources is None or sources(w.source))
            )

        return await self.pager.page(self._watch_indexes(), cursor, limit, self._load_many, keep)

    def _watch_indexes(self) -> str | list[str]:
        """The index (or one per partition) that lists the watches by creation."""
        return self.keys.watches

    def _watch_key(self, watch_id: str) -> str:
        return self.keys.watch(watch_id)

    async def paginate(
        self,
        index: str,
        cursor: Cursor | None,
        limit: int,
        load: Callable[[list[str]], Awaitable[list[T | None]]],
        keep: Callable[[T], bool],
    ) -> tuple[list[T], Cursor | None]:
        """Walk a sorted-set index from the cursor (store/paging.py)."""
        return await self.pager.page(index, cursor, limit, load, keep)

    async def _load_many(self, ids: list[str]) -> list[Watch | None]:
        pipe = self.client.pipeline(transaction=False)
        for watch_id in ids:
            pipe.hmget(self._watch_key(watch_id), codec.RECORD_FIELDS)
        results = await pipe.execute()
        return [codec.watch_from_record(i, r) for i, r in zip(ids, results, strict=True)]

    async def delete_watch(self, watch: Watch, retention_s: float = 7 * 86400.0) -> bool:
        """Stop watching. For retention_s the watch's hash says 'deleted' (a legacy
        watch's lookup key too), so discovery does not watch the job again."""
        k = self.keys
        deleted = await self._delete(
            keys=[
                k.watch(watch.id),
                k.due,
                k.leases,
                k.watch_key(watch.source, watch.kind, watch.job_id),
                k.watches,
                k.source_backlog(watch.source),
            ],
            args=[watch.id, to_ms(retention_s)],
        )
        return bool(deleted)

    async def claim(
        self,
        now: float,
        lease_s: float,
        limit: int,
        rate_limits: dict[str, tuple[float, int]] | None = None,
        horizon_s: float = 0.0,
        room: WorkerRoom | None = None,
    ) -> list[Claimed]:
        """Lease up to `limit` due watches whose source's limiter grants a slot within
        horizon_s; each comes with the delay before its request may go.

        rate_limits maps a source to (requests per second, burst); 0 turns the limiter
        off, though a 429 pause still holds. room bounds how many of each source's
        watches this claim takes (the caller's free workers: WorkerRoom). Watches
        refused by their limiter or their room are queued behind it and not returned.
        """
        limits = rate_limits or {}
        out: list[Claimed] = []
        scan = max(limit * 2, 32)  # due watches read per round; more when a round runs out
        looked = 0
        while True:
            got, more, stale = await self._claim_round(
                now,
                lease_s,
                limit - len(out),
                limits,
                horizon_s,
                room,
                scan,
                first=looked == 0,
                read_limit=limit,
            )
            out += got
            looked += scan
            # a round that ran out of what it read asks again, reading further: past a
            # source out of budget (its watches now wait in its backlog) or past watches
            # another replica took meanwhile; up to LOOK_PAST due watches in all
            if not more or len(out) >= limit or looked >= max(limit * 16, LOOK_PAST):
                return out
            if room is not None:
                room = room.after(Counter(c.watch.source for c in got))
            if not stale:  # what the previous claim read ran out: the same width again
                scan *= 4

    async def _claim_round(
        self,
        now: float,
        lease_s: float,
        limit: int,
        limits: dict[str, tuple[float, int]],
        horizon_s: float,
        room: WorkerRoom | None,
        scan: int,
        first: bool,
        read_limit: int,
    ) -> tuple[list[Claimed], bool, bool]:
        """One claim script call on candidates read before it: what it granted, whether it
        ran out of them before it had granted `limit`, and whether they were read with
        the previous claim.

        The candidates are those read in the same round trip as the previous claim's
        script (right after it) while more was due than that read took in: one round
        trip a claim while the queue is long. Otherwise they are read first. The script
        checks each again either way, and says when they ran out."""
        k = self.keys
        now_ms = to_ms(now)
        ahead, self._ahead = self._ahead, None
        # A claim's first round uses it while more was due than it read (the busy case,
        # where a read of its own would cost most) and it is recent; otherwise it may miss
        # what fell due since. Later rounds use the one read right after the last script.
        fits = (
            ahead is not None
            and (not ahead.read_all or not first)
            and (ahead.limits is limits or ahead.limits == limits)
            and ahead.limit >= limit
            and ahead.scan >= scan
            and 0 <= now_ms - ahead.read_ms <= to_ms(READ_AHEAD_MAX_AGE_S)
        )
        stale = False
        horizon_ms = to_ms(horizon_s)
        if ahead is None or not fits:
            reads = await self._read(now_ms, read_limit, limits, scan, horizon_ms)
            ahead = self._candidates(reads, now_ms, read_limit, limits, scan)
        elif first:  # read with the previous claim: more may have fallen due since
            ahead, stale = replace(ahead, read_all=False), True
        if ahead.unmarked:  # sources an older version queued: placed, then read again
            await self.scripts["ready_repair"](keys=[k.backlogs, k.ready])
            reads = await self._read(now_ms, read_limit, limits, scan, horizon_ms)
            ahead, stale = self._candidates(reads, now_ms, read_limit, limits, scan), False
        expired, due = ahead.expired, ahead.due
        few = len(limits) <= FEW_SOURCES
        # few: every source with a limit takes its turn, and any other with a backlog;
        # many: the ready ones take turns, and the sources of the due watches are named
        turns = [*limits, *(s for s in ahead.ready if s not in limits)] if few else ahead.ready
        unread = [s for s in turns if s not in ahead.heads]  # (one no longer configured)
        # a partition asks the fleet's limiters for slots first: it needs their sources
        named_all = few and self._limiter is None
        of, more_heads = await self._complete(
            [] if named_all else [*expired, *due], unread, read_limit
        )
        heads = {**ahead.heads, **more_heads} if more_heads else ahead.heads
        taking_turns = set(turns)
        sources = [*turns, *dict.fromkeys(s for s in of if s not in taking_turns)]
        keys = [k.due, k.leases, k.backlogs, k.ready]
        for s in sources:
            keys += self._limiter_keys(s)
        named = {s: limits[s] for s in sources if s in limits} if not few else limits
        granted_at = time.monotonic()  # the slots' delays count from no earlier than this
        grants: dict[str, Slots] = {}
        reserve: int | bytes = horizon_ms
        if self._limiter is not None:
            wanted = Counter(of)
            for s in turns:
                wanted[s] += len(heads.get(s, []))
            wanted = Counter({s: min(n, limit, _room_for(room, s)) for s, n in wanted.items()})
            grants = await self._limiter.grant(wanted, limits, horizon_ms)
            reserve = allowance(grants)
        args: list[str | int | bytes] = [
            now_ms,
            to_ms(lease_s),
            limit,
            orjson.dumps(
                {s: [r, b, *(room.limits(s) if room else [])] for s, (r, b) in named.items()}
                or {"": [0, 1]}
            ),
            reserve,
            -1 if room is None else room.shared,
            len(sources),
            *sources,
            len(turns),
            "1" if few else "0",
            "0" if ahead.read_all else "1",
        ]
        hash_of = k.watch("")  # + id: a watch's hash (Keys.watch, without a call per id)
        for ids in (expired, due, *(heads.get(s, []) for s in turns)):
            keys += [hash_of + i for i in ids]
            args += [len(ids), *ids]
        # the script, then the next claim's read, in one round trip
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command("EVALSHA", self._claim.sha, len(keys), *keys, *args)
        self._queue_read(pipe, now_ms, read_limit, limits, scan, horizon_ms)
        if self._limiter is None:
            granted_at = time.monotonic()
        answer, *reads = await pipe.execute(raise_on_error=False)
        if isinstance(answer, NoScriptError):  # Redis lost its scripts: load and ask again
            answer = await self._claim(keys=keys, args=args)  # (the reads came before it)
        elif isinstance(answer, BaseException):
            raise answer
        elif not any(isinstance(r, BaseException) for r in reads):
            # no I/O after the script, so what it granted always reaches the caller:
            # heads the read lacks are read before the next claim's script
            self._ahead = self._candidates(reads, now_ms, read_limit, limits, scan)
        *flat, more = answer
        out = []
        for i in range(0, len(flat), 4):
            token = int(flat[i + 1])
            delay_s = int(flat[i + 3]) / 1000
            watch = codec.watch_from_record(flat[i], [token, "watching", *flat[i + 2]])
            if watch is None:  # a hash without a doc: no version writes one
                raise StoreError(f"watch {flat[i]} has no document")
            self._note_source(watch.id, watch.source)
            out.append(Claimed(watch, token, delay_s, granted_at=granted_at))
        if grants and self._limiter is not None:
            used = Counter(c.watch.source for c in out)
            await self._limiter.give_back(grants, used, limits)
        return out, int(more) == 1, stale

    async def _read(
        self, now_ms: int, limit: int, limits: dict[str, Any], scan: int, horizon_ms: int
    ) -> list[Any]:
        """A claim's read on its own (see _queue_read)."""
        return await self._reads(
            lambda pipe: self._queue_read(pipe, now_ms, limit, limits, scan, horizon_ms)
        )

    async def _reads(self, queue: Callable[[Any], None]) -> list[Any]:
        """The answers of one pipeline of reads `queue` puts in it; sent again once the
        heads script is loaded when Redis lost it (the only script among claim reads)."""
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            queue(pipe)
            reads = list(await pipe.execute(raise_on_error=False))
            if not any(isinstance(r, NoScriptError) for r in reads):
                break
            await self.client.script_load(self._heads.script)
        for r in reads:
            if isinstance(r, BaseException):
                raise r
        return reads

    def _limiter_keys(self, source: str) -> list[str]:
        """A source's backlog, GCRA state, pause and sent counter, as the claim script
        takes them (built once a source: a claim names every source's)."""
        found = self._source_keys.get(source)
        if found is None:
            k = self.keys
            found = [
                k.source_backlog(source),
                k.source_gcra(source),
                k.source_pause(source),
                k.source_sent(source),
            ]
            if self._limiter is not None:  # the fleet's, granted before: not touched here
                found[1:] = [found[0]] * 3
            if len(self._source_keys) < SOURCE_KEYS_KEPT:
                self._source_keys[source] = found
        return found

    def _queue_read(
        self,
        pipe: Any,
        now_ms: int,
        limit: int,
        limits: dict[str, Any],
        scan: int,
        horizon_ms: int,
    ) -> None:
        """What a claim looks at: expired leases, due watches (one more than scan, to
        tell whether there are more), the first sources in ready (whose limiter may grant
        within the horizon), how many have a backlog and a place in ready, and with few
        sources each one's first backlogged watches."""
        k = self.keys
        pipe.zrangebyscore(k.leases, "-inf", now_ms, start=0, num=limit)
        pipe.zrangebyscore(k.due, "-inf", now_ms, start=0, num=scan + 1)
        pipe.zrangebyscore(k.ready, "-inf", now_ms + horizon_ms, start=0, num=2 * limit)
        pipe.scard(k.backlogs)
        pipe.zcard(k.ready)
        if limits and len(limits) <= FEW_SOURCES:
            backlogs = [self._limiter_keys(s)[0] for s in limits]
            pipe.execute_command("EVALSHA", self._heads.sha, len(backlogs), *backlogs, limit)

    def _candidates(
        self, reads: list[Any], now_ms: int, limit: int, limits: dict[str, Any], scan: int
    ) -> Candidates:
        """The read's answers; heads of the sources with a limit when they are few."""
        expired, due, ready, backlogged, placed, *rest = reads
        head_lists = rest[0] if rest else []
        return Candidates(
            limits=limits,
            read_ms=now_ms,
            limit=limit,
            scan=scan,
            expired=list(expired),
            due=list(due[:scan]),
            read_all=len(due) <= scan,
            ready=list(ready),
            heads=dict(zip(limits, head_lists, strict=False)),
            unmarked=int(backlogged) > int(placed),
        )

    async def _complete(
        self, watch_ids: list[str], unread: list[str], limit: int
    ) -> tuple[list[str], dict[str, list[str]]]:
        """What a claim's read lacks, in one round trip: the sources of these watches
        (remembered, else read; a watch gone meanwhile has none and is passed over) and
        the first backlogged watches of the unread sources (lua/heads.lua)."""
        found = {i: s for i in watch_ids if (s := self._source_of.get(i)) is not None}
        unknown = [i for i in watch_ids if i not in found]
        heads: dict[str, list[str]] = {}
        if unknown or unread:
            backlogs = [self._limiter_keys(s)[0] for s in unread]

            def queue(pipe: Any) -> None:
                for watch_id in unknown:
                    pipe.hget(self.keys.watch(watch_id), "source")
                if unread:
                    pipe.execute_command(
                        "EVALSHA", self._heads.sha, len(backlogs), *backlogs, limit
                    )

            answers = await self._reads(queue)
            for watch_id, source in zip(unknown, answers, strict=False):
                if source:
                    found[watch_id] = str(source)
                    self._note_source(watch_id, str(source))
            if unread:
                heads = dict(zip(unread, answers[-1], strict=True))
        return [found[i] for i in watch_ids if i in found], heads

    def _note_source(self, watch_id: str, source: str) -> None:
        if len(self._source_of) >= SOURCES_OF_WATCHES_KEPT:  # the oldest learned goes
            del self._source_of[next(iter(self._source_of))]
        self._source_of[watch_id] = source

    async def reschedule(
        self,
        claimed: Claimed,
        updated: Watch,
        next_at: float,
        priority_at: float | None = None,
        *,
        keep_priority: bool = False,
    ) -> Verdict:
        """Release the lease and make the watch due at next_at, saving its new state.
        priority_at orders it among due watches when its source's budget is short (lower
        first; poll/priority.py); by default its due time. keep_priority: no poll was
        made, the watch keeps its place."""
        if updated.next_poll_at != next_at:
            updated = replace(updated, next_poll_at=next_at)
        return await self._reschedules.call(
            [
                claimed.watch.id,
                str(claimed.token),
                str(to_ms(next_at)),
                codec.watch_to_doc(updated),
                ""
                if keep_priority
                else str(to_ms(next_at if priority_at is None else priority_at)),
            ]
        )

    async def _flush_reschedules(self, items: list[list[str]]) -> list[Verdict]:
        k = self.keys
        if len(items) == 1:  # the plain script: no argument list to build
            watch_id, token, next_ms, doc, prio_ms = items[0]
            result = await self._reschedule(
                keys=[k.watch(watch_id), k.due, k.leases],
                args=[watch_id, token, next_ms, doc, prio_ms],
            )
            return [Verdict(result)]
        keys = [k.due, k.leases, *(k.watch(item[0]) for item in items)]
        args = [part for item in items for part in item]
        return [Verdict(v) for v in await self._reschedule_many(keys=keys, args=args)]

    async def _flush_finishes(
        self, items: list[tuple[list[str], list[str]]]
    ) -> list[Verdict | BaseException]:
        results = await run_scripts(self.client, [(self._finish, k, a) for k, a in items])
        return [v if isinstance(v, BaseException) else Verdict(v) for v in results]

    async def finish(
        self, claimed: Claimed, updated: Watch, event: Event, retention_s: float
    ) -> Verdict:
        """Terminal compare-and-set plus the outbox write, in one atomic step."""
        k = self.keys
        w = claimed.watch
        updated = replace(updated, next_poll_at=None)
        result = await self._finishes.call(
            (
                [
                    k.watch(w.id),
                    k.due,
                    k.leases,
                    k.watch_key(w.source, w.kind, w.job_id),
                    k.event(event.id),
                    k.events,
                    k.watch_events(w.id),
                    k.outbox,
                ],
                [
                    w.id,
                    str(claimed.token),
                    str(to_ms(updated.terminal_at or 0)),
                    str(to_ms(retention_s)),
                    event.id,
                    event.type,
                    codec.event_to_json(event),
                    updated.state.value,
                    codec.watch_to_doc(updated),
                ],
            )
        )
        assert isinstance(result, Verdict)  # the coalescer raises a failed call's exception
        return result

    async def backlogs(self) -> dict[str, int]:
        """Per source, the due watches its limiter has refused so far (waiting their turn)."""
        sources = sorted(str(s) for s in await self.client.smembers(self.keys.backlogs))
        pipe = self.client.pipeline(transaction=False)
        for s in sources:
            pipe.zcard(self.keys.source_backlog(s))
        return dict(zip(sources, (int(n) for n in await pipe.execute()), strict=True))

    # ----------------------------------------------------------------- events
    async def watch_counts(self) -> dict[str, int]:
        """Watches kept, and those still polled (due, in a backlog, or leased)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.keys.watches)
        pipe.zcard(self.keys.due)
        pipe.zcard(self.keys.leases)
        total, due, leased = await pipe.execute()
        waiting = sum((await self.backlogs()).values())
        watching = int(due) + int(leased) + waiting
        return {
            "total": int(total),
            "watching": watching,
            "polling_now": int(leased),
            "waiting_for_budget": waiting,
            "finished": max(0, int(total) - watching),
        }

    # ------------------------------------------------------------------ upkeep
    async def trim(self, now: float, retention_s: float, max_age_s: float) -> None:
        """Drop index entries and outbox entries older than any live record can be."""
        k = self.keys
        horizon_ms = to_ms(now - retention_s)
        pipe = self.client.pipeline(transaction=False)
        pipe.zremrangebyscore(k.events, "-inf", horizon_ms)
        pipe.zremrangebyscore(k.watches, "-inf", to_ms(now - retention_s - max_age_s))
        pipe.xtrim(k.outbox, minid=str(max(0, horizon_ms)), approximate=True)
        await pipe.execute()
