"""Subscriptions, deliveries and the outbox consumer group, in Redis."""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

from bridge.clock import to_ms
from bridge.errors import BridgeError
from bridge.model import Delivery, DeliveryStatus, Event, Subscription
from bridge.sealing import SealError
from bridge.store import codec
from bridge.store.coalescer import Coalescer
from bridge.store.delivery_codec import (
    delivery_from_json,
    delivery_to_json,
    sub_from_json,
    sub_to_json,
    with_state,
)
from bridge.store.keys import Keys
from bridge.store.paging import Cursor
from bridge.store.pipelined import ScriptCall, run_scripts_or_raise
from bridge.store.redis import RedisStore
from bridge.store.redis_errors import translated
from bridge.store.verdicts import Verdict

# Deliveries of a re-enabled subscription come back this far apart.
UNPARK_SPACING_S = 0.005
DEFAULT_RETENTION_S = 7 * 86400.0  # delivery.retention's default


class OutboxGroupMissing(BridgeError):
    """Redis lost the consumer group (restarted empty, failed over, flushed)."""


@dataclass(frozen=True)
class OutboxEntry:
    entry_id: str
    event_id: str


@dataclass(frozen=True)
class ClaimedDelivery:
    delivery: Delivery
    token: int
    event: Event | None = None  # read in the same claim; None when it expired


def new_subscription_id() -> str:
    return "sub_" + secrets.token_hex(10)


def static_subscription_id(url: str) -> str:
    return "sub_static_" + hashlib.sha256(url.encode()).hexdigest()[:16]


log = structlog.get_logger()

# Deliveries whose event and predecessor this process remembers (about 340 B each, so
# about 7 MB): more than are due at once; a forgotten one is read again.
KNOWN_MAX = 20_000


def delivery_id(event_id: str, sub_id: str, replay: int = 0) -> str:
    raw = f"{event_id}\x1f{sub_id}\x1f{replay}"
    return "dlv_" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def progress_channel(watch_id: str, sub_id: str) -> str:
    """The one delivery that carries a job's progress events to a subscriber."""
    return delivery_id(f"progress:{watch_id}", sub_id)


def fanout_mode(event: Event, sub_id: str) -> str:
    """How FANOUT treats a delivery: a progress channel, a terminal event that waits for
    its job's channel, or a plain one."""
    if event.type == "import.progress":
        return "progress"
    if event.watch_id and event.type.startswith("import."):
        return "after:" + progress_channel(event.watch_id, sub_id)
    return ""


@translated
class DeliveryStore:
    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.client: aioredis.Redis = store.client
        self.keys: Keys = store.keys
        run = store.scripts  # registered once, on the shared connection
        self._fanout = run["delivery_fanout"]
        # subscriptions whose secrets the keys at hand cannot open (their deliveries
        # wait: a replica without a key another one seals with)
        self.unreadable: set[str] = set()
        self._replace_if_equals = run["replace_if_equals"]
        self._claim = run["delivery_claim"]
        self._record = run["delivery_record_many"]
        self._requeue = run["delivery_requeue"]
        self._unpark = run["delivery_unpark"]
        self._emit = run["delivery_emit"]
        self._mark_failing = run["delivery_mark_failing"]
        self._records: Coalescer[list[Any], Verdict] = Coalescer(self._flush_records)
        # What each delivery this process created carries and waits for (event id, the
        # delivery ahead of it or ""): its claim declares those keys without reading
        # them first. A stale entry (a newer progress event, another replica's fan-out)
        # is told apart by the claim script, which passes the delivery over; it is then
        # read afresh.
        self._known: dict[str, tuple[str, str]] = {}

    def _remember(self, delivery_id: str, event_id: str, after: str) -> None:
        if len(self._known) >= KNOWN_MAX:  # oldest first out: the dict keeps insertion order
            for old in list(itertools.islice(self._known, KNOWN_MAX // 10)):
                del self._known[old]
        self._known[delivery_id] = (event_id, after)

    # ---------------------------------------------------------- subscriptions
    async def save_subscription(self, sub: Subscription) -> None:
        """Write the configuration part; the state (enabled, failing) has its own hash.
        Not one read without its secrets (SealError): they would be lost."""
        if sub.id in self.unreadable:
            raise SealError(f"subscription {sub.id}: its secrets do not open with the keys here")
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.subscription(sub.id), sub_to_json(sub, self.store.sealer))
        pipe.sadd(self.keys.subscriptions, sub.id)
        pipe.incr(self.keys.subscriptions_version)
        await pipe.execute()

    async def set_state(
        self,
        sub_id: str,
        *,
        enabled: bool | None = None,
        disabled_reason: str | None = None,
        clear_failing: bool = False,
    ) -> None:
        """Update state fields one by one (HSET), so writers never undo each other's config.
        The continuous-failure clock is started by mark_failing, cleared here."""
        mapping: dict[str, str] = {}
        if enabled is not None:
            mapping["enabled"] = "1" if enabled else "0"
            mapping["disabled_reason"] = "" if enabled else (disabled_reason or "")
        if clear_failing:
            mapping["failing_since"] = ""
        if mapping:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self.keys.subscription_state(sub_id), mapping=mapping)  # type: ignore[arg-type]
            pipe.incr(self.keys.subscriptions_version)
            await pipe.execute()

    async def mark_failing(self, sub_id: str, now: float) -> float:
        """Start the continuous-failure clock unless it runs already; returns its start
        (replicas with stale caches never move an earlier start forward)."""
        key = self.keys.subscription_state(sub_id)
        return float(await self._mark_failing(keys=[key], args=[repr(now)]))

    async def get_subscription(self, sub_id: str) -> Subscription | None:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.subscription(sub_id))
        pipe.hgetall(self.keys.subscription_state(sub_id))
        text, state = await pipe.execute()
        return with_state(self._decoded(sub_id, text), state) if text else None

    async def unreadable_subscriptions(self) -> list[str]:
        """`sub_id: why` for each subscription whose secrets the keys at hand cannot
        open (checked at start-up: a wrong key is an error then, never later)."""
        out = []
        for sub_id, text in await self._raw_subscriptions():
            try:
                sub_from_json(text, self.store.sealer)
            except SealError as exc:
                out.append(f"subscription {sub_id}: {exc}")
        return out

    async def reseal_subscriptions(self) -> tuple[int, int, list[str]]:
        """Every subscription's secrets sealed under the first key (`secrets rotate`):
        (written again, already so, those changed too often meanwhile to be written). A
        subscription changed meanwhile is read again."""
        sealer, written, current, missed = self.store.sealer, 0, 0, []
        for sub_id, text in await self._raw_subscriptions():
            for _ in range(10):
                fresh = sub_to_json(sub_from_json(text, sealer), sealer)
                if fresh == text or all(sealer.is_current(v) for v in _sealed_values(text)):
                    current += 1
                    break
                key = self.keys.subscription(sub_id)
                if await self._replace_if_equals(keys=[key], args=[text, fresh]):
                    written += 1
                    break
                again = cast(str | None, await self.client.get(key))
                if again is None:  # deleted meanwhile
                    break
                text = again
            else:
                missed.append(sub_id)
        return written, current, missed

    async def _raw_subscriptions(self) -> list[tuple[str, str]]:
        ids = sorted(cast(set[str], await self.client.smembers(self.keys.subscriptions)))
        keys = [self.keys.subscription(i) for i in ids]
        texts = cast(list[str | None], await self.client.mget(keys)) if ids else []
        return [(i, t) for i, t in zip(ids, texts, strict=True) if t]

    async def list_subscriptions(self) -> list[Subscription]:
        return (await self.versioned_subscriptions())[1]

    async def versioned_subscriptions(self) -> tuple[int, list[Subscription]]:
        """Every subscription, and the version they were read at."""
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self.keys.subscriptions_version)
        pipe.smembers(self.keys.subscriptions)
        version, members = await pipe.execute()
        ids = sorted(cast(set[str], members))
        if not ids:
            return int(version or 0), []
        pipe = self.client.pipeline(transaction=False)
        for i in ids:
            pipe.get(self.keys.subscription(i))
            pipe.hgetall(self.keys.subscription_state(i))
        rows = await pipe.execute()
        subs = []
        for n in range(0, len(rows), 2):
            if not rows[n]:
                continue
            subs.append(with_state(self._decoded(ids[n // 2], rows[n]), rows[n + 1]))
        return int(version or 0), sorted(subs, key=lambda s: (s.created_at, s.id))

    def _decoded(self, sub_id: str, text: str) -> Subscription:
        """A subscription; one whose secrets the keys at hand cannot open comes without
        them and is noted in `unreadable` (matched, never sent: it waits), not an error
        that would stop every other one."""
        try:
            sub = sub_from_json(text, self.store.sealer)
        except SealError as exc:
            if sub_id not in self.unreadable:
                log.error("subscription_unreadable", subscription_id=sub_id, error=str(exc))
            self.unreadable.add(sub_id)
            return sub_from_json(text, self.store.sealer, lenient=True)
        self.unreadable.discard(sub_id)
        return sub

    async def delete_subscription(self, sub_id: str, now: float) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.keys.subscription(sub_id))
        pipe.delete(self.keys.subscription_state(sub_id))
        pipe.srem(self.keys.subscriptions, sub_id)
        pipe.incr(self.keys.subscriptions_version)
        deleted, _, _, _ = await pipe.execute()
        # Parked deliveries go back to the queue, where the deliverer finds the
        # subscription gone and records them dead: they then expire like every dead one.
        await self.unpark(sub_id, now)
        return bool(deleted)

    async def unpark(
        self, sub_id: str, now: float, *, spacing_s: float = UNPARK_SPACING_S, batch: int = 1000
    ) -> int:
        """Back to the queue, in bounded batches (no script stalls Redis), spaced out."""
        k = self.keys
        moved = 0
        while True:
            first = to_ms(now + moved * spacing_s)
            n = int(
                await self._unpark(
                    keys=[k.parked(sub_id), k.deliveries_due],
                    args=[first, to_ms(spacing_s), batch],
                )
            )
            moved += n
            if n < batch:
                return moved

    async def parked_among(self, deliveries: list[Delivery]) -> set[str]:
        """Which of these wait while their subscription is disabled (one round trip)."""
        open_ = [
            d for d in deliveries if d.status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
        ]
        if not open_:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for d in open_:
            pipe.zscore(self.keys.parked(d.subscription_id), d.id)
        scores = await pipe.execute()
        return {d.id for d, score in zip(open_, scores, strict=True) if score is not None}

    async def parked_count(self, sub_id: str) -> int:
        return int(await self.client.zcard(self.keys.parked(sub_id)))

    # ------------------------------------------------------------------ outbox
    async def drop_consumer(self, consumer: str) -> bool:
        """Forget this consumer if it holds no unacked entries (they would be lost)."""
        k = self.keys
        try:
            pending = await self.client.xpending_range(
                k.outbox, Keys.OUTBOX_GROUP, min="-", max="+", count=1, consumername=consumer
            )
            if pending:
                return False
            # answers how many pending entries it dropped: none, as checked
            await self.client.xgroup_delconsumer(k.outbox, Keys.OUTBOX_GROUP, consumer)
            return True
        except ResponseError:  # no group or stream: nothing to forget
            return False

    async def drop_idle_consumers(self, idle_s: float) -> int:
        """Delete consumers idle for idle_s with nothing pending (processes long gone)."""
        k = self.keys
        try:
            consumers = await self.client.xinfo_consumers(k.outbox, Keys.OUTBOX_GROUP)
        except ResponseError:
            return 0
        idle = [
            c["name"]
            for c in consumers
            if int(c.get("pending", 0)) == 0 and int(c.get("idle", 0)) >= to_ms(idle_s)
        ]
        for name in idle:
            await self.client.xgroup_delconsumer(k.outbox, Keys.OUTBOX_GROUP, name)
        return len(idle)

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(
                self.keys.outbox, Keys.OUTBOX_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_outbox(
        self, consumer: str, count: int, reclaim_idle_s: float
    ) -> tuple[list[OutboxEntry], int]:
        """New outbox entries, plus entries another consumer took and never acked; and
        the subscriptions' version. One round trip."""
        k = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.xautoclaim(
            k.outbox,
            Keys.OUTBOX_GROUP,
            consumer,
            min_idle_time=to_ms(reclaim_idle_s),
            start_id="0-0",
            count=count,
        )
        pipe.xreadgroup(Keys.OUTBOX_GROUP, consumer, {k.outbox: ">"}, count=count)
        pipe.get(k.subscriptions_version)
        try:
            claimed, fresh, version = await pipe.execute()
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost its data: the caller rebuilds first
                raise OutboxGroupMissing("the outbox consumer group is gone") from None
            raise
        # Redis 6.2 answers [next, entries]; Redis 7 adds a list of deleted ids.
        entries = list(claimed[1]) if claimed else []
        for _, rows in cast(list[tuple[str, list[Any]]], fresh or []):
            entries.extend(rows)
        out = []
        for entry_id, fields in entries:
            if fields and fields.get("event_id"):
                out.append(OutboxEntry(str(entry_id), str(fields["event_id"])))
            else:  # trimmed away or malformed: nothing to deliver, just ack
                await self.client.xack(k.outbox, Keys.OUTBOX_GROUP, entry_id)
        return out, int(version or 0)

    async def fan_out_many(
        self,
        batch: list[tuple[str, list[Delivery]]],
        now: float,
        modes: dict[str, str] | None = None,
    ) -> int:
        """Outbox entries (entry id, its deliveries) → deliveries, acked; one script call.
        modes: delivery id → FANOUT mode (fanout_mode); plain when absent."""
        k = self.keys
        args: list[Any] = [Keys.OUTBOX_GROUP, to_ms(now)]
        keys = [k.outbox, k.deliveries_due, k.deliveries, k.deliveries_leases, k.deliveries_dead]
        for entry_id, deliveries in batch:
            args += [entry_id, len(deliveries)]
            for d in deliveries:
                mode = (modes or {}).get(d.id, "")
                args += [d.id, d.subscription_id, delivery_to_json(d), mode]
                keys.append(k.delivery(d.id))
                self._remember(d.id, d.event_id, mode[6:] if mode.startswith("after:") else "")
        return int(await self._fanout(keys=keys, args=args))

    async def get_events(self, event_ids: list[str]) -> list[Event | None]:
        texts = cast(
            list[str | None], await self.client.mget([self.keys.event(i) for i in event_ids])
        )
        return [codec.event_from_json(t) if t else None for t in texts]

    async def emit_many(self, events: list[Event], now: float, retention_s: float) -> int:
        """Several events in one round trip."""
        k = self.keys
        calls: list[ScriptCall] = [
            (
                self._emit,
                [k.event(event.id), k.events, k.outbox],
                [event.id, to_ms(now), to_ms(retention_s), codec.event_to_json(event), event.type],
            )
            for event in events
        ]
        return sum(int(n) for n in await run_scripts_or_raise(self.client, calls))

    async def emit(self, event: Event, now: float, retention_s: float) -> bool:
        """True when written (False: it existed)."""
        return bool(await self.emit_many([event], now, retention_s))

    async def save_event(self, event: Event, now: float, retention_s: float) -> None:
        """An event outside the outbox (a ping): readable by id, delivered by the caller."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.event(event.id), codec.event_to_json(event), px=to_ms(retention_s))
        pipe.zadd(self.keys.events, {event.id: to_ms(now)})
        await pipe.execute()

    # -------------------------------------------------------------- deliveries
    async def claim(
        self, now: float, lease_s: float, limit: int, retention_s: float = DEFAULT_RETENTION_S
    ) -> list[ClaimedDelivery]:
        return (await self.claim_versioned(now, lease_s, limit, retention_s))[0]

    async def claim_versioned(
        self, now: float, lease_s: float, limit: int, retention_s: float = DEFAULT_RETENTION_S
    ) -> tuple[list[ClaimedDelivery], int]:
        """Lease due deliveries; also the subscriptions' version at the same instant.
        retention_s: how long a progress delivery superseded here is kept."""
        out, version, passed = await self._claim_once(now, lease_s, limit, retention_s)
        if passed and len(out) < limit:  # read afresh now, rather than at the next claim
            more, version, _ = await self._claim_once(now, lease_s, limit - len(out), retention_s)
            out += more
        return out, version

    async def _claim_once(
        self, now: float, lease_s: float, limit: int, retention_s: float
    ) -> tuple[list[ClaimedDelivery], int, int]:
        k = self.keys
        now_ms = to_ms(now)
        pipe = self.client.pipeline(transaction=False)
        # twice what it may take: another replica may take some between read and claim
        pipe.zrangebyscore(k.deliveries_due, "-inf", now_ms, start=0, num=limit * 2)
        pipe.zrangebyscore(k.deliveries_leases, "-inf", now_ms, start=0, num=limit)
        due, expired = await pipe.execute()
        candidates = [(str(i), "due") for i in due] + [(str(i), "expired") for i in expired]
        unknown = [c for c, _ in candidates if c not in self._known]
        if unknown:  # what each waits for and carries, read for the script to declare
            pipe = self.client.pipeline(transaction=False)
            for delivery_id in unknown:
                pipe.hmget(k.delivery(delivery_id), ["event", "after"])
            for delivery_id, (event_id, after) in zip(unknown, await pipe.execute(), strict=True):
                self._remember(delivery_id, event_id or "", after or "")
        keys: list[str] = [k.deliveries_due, k.deliveries_leases, k.subscriptions_version]
        args: list[Any] = [now_ms, to_ms(lease_s), to_ms(retention_s), limit]
        hash_of, event_of = k.delivery(""), k.event("")  # + id, as Keys builds them
        for delivery_id, why in candidates:
            event_id, after = self._known[delivery_id]
            keys += [hash_of + delivery_id, hash_of + (after or delivery_id), event_of + event_id]
            args += [delivery_id, why, event_id, after]
        *flat, version = await self._claim(keys=keys, args=args)
        passed = int(flat.pop())  # candidates whose event or predecessor changed meanwhile
        for delivery_id in flat[len(flat) - passed :]:
            self._known.pop(str(delivery_id), None)
        del flat[len(flat) - passed :]
        out = []
        for i in range(0, len(flat), 4):
            token = int(flat[i + 1])
            event = codec.event_from_json(flat[i + 3]) if flat[i + 3] else None
            out.append(ClaimedDelivery(delivery_from_json(flat[i + 2], token), token, event))
        return out, int(version), passed

    async def record(
        self,
        claimed: ClaimedDelivery,
        updated: Delivery,
        retention_s: float,
        *,
        park: bool = False,
    ) -> Verdict:
        k = self.keys
        d = claimed.delivery
        next_ms = "" if updated.next_attempt_at is None else str(to_ms(updated.next_attempt_at))
        if park:
            next_ms = str(to_ms(updated.created_at))
        if updated.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD):
            self._known.pop(d.id, None)  # a progress channel is read afresh if it goes on
        result = await self._records.call(
            [
                d.id,
                claimed.token,
                updated.status.value,
                delivery_to_json(updated),
                next_ms,
                "1" if park else "0",
                to_ms(retention_s),
                k.parked(d.subscription_id),  # a key: moved to KEYS by _flush_records
            ]
        )
        assert isinstance(result, Verdict)  # the coalescer raises a failed call's exception
        return result

    async def _flush_records(self, items: list[list[Any]]) -> list[Verdict]:
        k = self.keys
        keys: list[str] = [k.deliveries_due, k.deliveries_leases, k.deliveries_dead]
        args: list[Any] = []
        for *fields, parked in items:
            keys += [k.delivery(fields[0]), parked]
            args += fields
        results = await self._record(keys=keys, args=args)
        return [Verdict(r) for r in results]

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        lease, doc = cast(
            list[str | None],
            await self.client.hmget(self.keys.delivery(delivery_id), ["lease", "doc"]),
        )
        return delivery_from_json(doc, int(lease or 0)) if doc else None

    async def get_deliveries(self, delivery_ids: list[str]) -> list[Delivery | None]:
        """Several deliveries in one round trip, None for those not kept."""
        pipe = self.client.pipeline(transaction=False)
        for i in delivery_ids:
            pipe.hmget(self.keys.delivery(i), ["lease", "doc"])
        rows = cast(list[list[str | None]], await pipe.execute())
        return [delivery_from_json(doc, int(lease or 0)) if doc else None for lease, doc in rows]

    async def requeue(self, delivery: Delivery, now: float) -> Verdict:
        """Back to the queue with a fresh schedule (API retry and recover)."""
        fresh = replace(delivery, status=DeliveryStatus.PENDING, failures=0, next_attempt_at=now)
        k = self.keys
        return Verdict(
            await self._requeue(
                keys=[k.delivery(delivery.id), k.deliveries_due, k.deliveries_dead],
                args=[delivery.id, to_ms(now), delivery_to_json(fresh)],
            )
        )

    async def add_deliveries(self, deliveries: list[Delivery], now: float) -> int:
        """Deliveries not from the outbox (replays, pings)."""
        return await self.fan_out_many([("", deliveries)], now)

    async def list_deliveries(
        self,
        *,
        status: DeliveryStatus | None = None,
        subscription_id: str | None = None,
        cursor: Cursor | None = None,
        limit: int = 50,
        subscriptions: Collection[str] | None = None,
    ) -> tuple[list[Delivery], Cursor | None]:
        """subscriptions: only the deliveries to these (a scoped token's)."""

        async def load(ids: list[str]) -> list[Delivery | None]:
            pipe = self.client.pipeline(transaction=False)
            for i in ids:
                pipe.hget(self.keys.delivery(i), "doc")
            docs = cast(list[str | None], await pipe.execute())
            return [delivery_from_json(d) if d else None for d in docs]

        def keep(d: Delivery) -> bool:
            return (
                (status is None or d.status == status)
                and (subscription_id is None or d.subscription_id == subscription_id)
                and (subscriptions is None or d.subscription_id in subscriptions)
            )

        return await self.store.paginate(self.keys.deliveries, cursor, limit, load, keep)

    async def queue_depth(self) -> int:
        return int(await self.client.zcard(self.keys.deliveries_due))

    async def queue_counts(self, sub_ids: list[str]) -> dict[str, int]:
        """Sizes of the delivery queues, for `import-bridge status` (one round trip)."""
        k = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(k.deliveries_due)
        pipe.zcard(k.deliveries_leases)
        pipe.zcard(k.deliveries)
        pipe.xlen(k.outbox)
        pipe.xpending(k.outbox, Keys.OUTBOX_GROUP)
        pipe.zcard(k.deliveries_dead)
        for sub_id in sub_ids:
            pipe.zcard(k.parked(sub_id))
        due, leased, total, outbox, pending, dead, *parked = await pipe.execute(
            raise_on_error=False
        )
        for answer in (due, leased, total, outbox, pending, dead, *parked):
            # the group may not exist yet; any other error (a cluster in a failover
            # answers in place) is the call's
            if isinstance(answer, BaseException) and answer is not pending:
                raise answer
        if isinstance(pending, BaseException) and "NOGROUP" not in str(pending):
            raise pending
        return {
            "deliveries_due": int(due),
            "deliveries_in_flight": int(leased),
            "deliveries_kept": int(total),
            "deliveries_parked": sum(int(p) for p in parked),
            # dead and kept (for delivery.retention; the janitor trims the index)
            "deliveries_dead": int(dead),
            "outbox_entries": int(outbox),
            # no group yet (no deliverer ever ran): nothing is pending
            "outbox_unacked": int(pending["pending"]) if isinstance(pending, dict) else 0,
        }

    async def trim_index(
        self, now: float, retention_s: float, batch: int = 500, max_batches: int = 200
    ) -> int:
        """Drop index entries of deliveries that expired: every entry older than the
        retention is looked at (in batches), not only the first few; those still alive
        (parked, say) stay listed."""
        k = self.keys
        horizon = to_ms(now - retention_s)
        await self.client.zremrangebyscore(k.deliveries_dead, "-inf", horizon)
        dropped = 0
        offset = 0
        for _ in range(max_batches):
            old = cast(
                list[str],
                await self.client.zrangebyscore(
                    k.deliveries, "-inf", horizon, start=offset, num=batch
                ),
            )
            if not old:
                break
            pipe = self.client.pipeline(transaction=False)
            for delivery in old:
                pipe.exists(k.delivery(delivery))
            gone = [d for d, alive in zip(old, await pipe.execute(), strict=True) if not alive]
            if gone:
                await self.client.zrem(k.deliveries, *gone)
            dropped += len(gone)
            offset += len(old) - len(gone)  # the live ones stay ahead of the next batch
            if len(old) < batch:
                break
        return dropped


def _sealed_values(text: str) -> list[str]:
    """The secret values of a stored subscription, as stored."""
    d = orjson.loads(text)
    return [s for s, _ in d["secrets"]] + [v for _, v in d["headers"]]
