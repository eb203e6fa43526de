"""Every Redis key name the bridge uses, in one place.

Every key carries a hash tag, so that multi-key Lua scripts stay valid on a Redis
Cluster. On one tag (today's deployments) all keys share `{prefix}`. Partitioned
(store/layout.py), a watch, its schedule and its events take their partition's tag,
while the fleet's state (limiters, pauses, tokens, health, subscriptions, deliveries)
keeps `{prefix}`: `Keys.partition(tag)` gives the former under another tag.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str
    # the partition's tag for per-job keys (store/layout.py); None: the prefix's
    tag: str | None = None

    @property
    def _p(self) -> str:
        """The fleet's tag: state shared by every partition."""
        return "{" + self.prefix + "}"

    @property
    def _t(self) -> str:
        """This partition's tag: a watch, its schedule and its events."""
        return "{" + (self.tag or self.prefix) + "}"

    def partition(self, tag: str) -> Keys:
        """The same names, with per-job keys under another partition's tag."""
        return Keys(self.prefix, tag)

    @property
    def marker(self) -> str:
        """String: written when a deployment first starts. Gone while bridges run means
        Redis lost its data (restarted empty, failed over to an empty replica, flushed)."""
        return f"{self._t}:marker"

    # -- watches
    def watch(self, watch_id: str) -> str:
        """Hash: one watch's fields."""
        return f"{self._t}:watch:{watch_id}"

    def watch_key(self, source: str, kind: str, job_id: str) -> str:
        """String: source+kind+job_id → watch id (idempotent registration)."""
        return f"{self._t}:watchkey:{source}:{kind}:{job_id}"

    @property
    def watches(self) -> str:
        """Sorted set: watch id by creation time (ms), for listing."""
        return f"{self._t}:watches"

    @property
    def due(self) -> str:
        """Sorted set: watch id by next poll time (ms); absent while leased or finished."""
        return f"{self._t}:due"

    @property
    def leases(self) -> str:
        """Sorted set: watch id by lease expiry (ms) while a replica polls it."""
        return f"{self._t}:leases"

    # -- events and the outbox
    def event(self, event_id: str) -> str:
        """String: the event as JSON."""
        return f"{self._t}:event:{event_id}"

    @property
    def events(self) -> str:
        """Sorted set: event id by creation time (ms)."""
        return f"{self._t}:events"

    def watch_events(self, watch_id: str) -> str:
        """Sorted set: a watch's event ids by creation time (ms)."""
        return f"{self._t}:watch_events:{watch_id}"

    @property
    def outbox(self) -> str:
        """Stream: one entry per generated event; the delivery engine's input."""
        return f"{self._t}:outbox"

    # -- per source
    def source_backlog(self, source: str) -> str:
        """Sorted set: due watches the source's limiter refused, by priority key (ms)."""
        return f"{self._t}:source:{source}:backlog"

    def source_discovered(self, source: str) -> str:
        """Sorted set: job ids discovery watched for the source, by when (ms); counted
        against sources.NAME.discover_max_watches, pruned after poll.max_age."""
        return f"{self._p}:source:{source}:discovered"

    @property
    def backlogs(self) -> str:
        """Set: the sources that have a backlog."""
        return f"{self._t}:backlogs"

    @property
    def ready(self) -> str:
        """Sorted set: the sources that have a backlog, by when (server ms) their limiter
        may grant again; now or earlier when it may at once. A claim reads the first few
        instead of every source (lua/claim.lua)."""
        return f"{self._t}:ready"

    def durations(self, source: str, kind: str, generation: str) -> str:
        """Hash: learned job durations of a source and kind, bucket → jobs, plus `n`;
        generation `current` or `previous` (poll/duration_policy.py, store/durations.py)."""
        return f"{self._p}:durations:{source}:{kind}:{generation}"

    @property
    def source_defs(self) -> str:
        """Hash: sources defined through the API, name → document (sealed)."""
        return f"{self._p}:source_defs"

    @property
    def source_defs_version(self) -> str:
        """Counter: bumped on every change of source_defs (replicas watch it)."""
        return f"{self._p}:source_defs_version"

    @property
    def source_defs_changes(self) -> str:
        """Sorted set: each defined (or deleted) source by the version that changed it
        last; a replica reads the names above the version it knows."""
        return f"{self._p}:source_defs_changes"

    @property
    def source_defs_deleted(self) -> str:
        """Sorted set: sources deleted through the API, by when (ms); their watches are
        dropped when next due."""
        return f"{self._p}:source_defs_deleted"

    def api_token(self, digest: str) -> str:
        """String: a token made through the API, by the SHA-256 of its value: its
        record (id, role, sources, description)."""
        return f"{self._p}:api_token:{digest}"

    @property
    def api_tokens(self) -> str:
        """Hash: token id → the SHA-256 its record is kept under (listing, revoking)."""
        return f"{self._p}:api_tokens"

    def trend(self, bucket_start: int) -> str:
        """Hash: what every replica counted in one five-minute bucket, field → count
        (trends.py: requests per source, delivery verdicts, time to notice)."""
        return f"{self._p}:trend:{bucket_start}"

    def ui_session(self, session_id: str) -> str:
        """String: a console session's CSRF token (the session id is the cookie)."""
        return f"{self._p}:ui:session:{session_id}"

    def lock(self, name: str) -> str:
        """String: a short lease on a fleet-wide chore (discovery of one source)."""
        return f"{self._p}:lock:{name}"

    def source_gcra(self, limiter: str) -> str:
        """String: the GCRA theoretical arrival time (server ms) of a source's limiter,
        or of its token endpoint's ("NAME:token")."""
        return f"{self._p}:source:{limiter}:gcra"

    def source_sent(self, limiter: str) -> str:
        """Hash: requests granted per 10 s window of server time (budget use)."""
        return f"{self._p}:source:{limiter}:sent"

    def legacy_source_sent(self, limiter: str, window: int) -> str:
        """String: one 10 s window's count, as versions before the hash wrote it; read
        alongside source_sent while such replicas may still run (a rolling upgrade)."""
        return f"{self._p}:source:{limiter}:sent:{window}"

    def source_pause(self, source: str) -> str:
        """String: paused-until (Redis server time, ms) after a 429."""
        return f"{self._p}:source:{source}:paused_until"

    def source_health(self, source: str) -> str:
        return f"{self._p}:source:{source}:health"

    def source_token(self, source: str) -> str:
        return f"{self._p}:source:{source}:token"

    def source_token_lock(self, source: str) -> str:
        return f"{self._p}:source:{source}:token_lock"

    # -- subscriptions and deliveries
    def subscription(self, sub_id: str) -> str:
        """String: the subscription as JSON (secrets included: never listed as-is)."""
        return f"{self._p}:sub:{sub_id}"

    def subscription_state(self, sub_id: str) -> str:
        """Hash: {enabled, disabled_reason, failing_since}, written by deliverers and the API."""
        return f"{self._p}:sub_state:{sub_id}"

    @property
    def subscriptions(self) -> str:
        """Set: every subscription id."""
        return f"{self._p}:subs"

    @property
    def subscriptions_version(self) -> str:
        """Counter: bumped on every subscription change, so caches know when to reload."""
        return f"{self._p}:subs_version"

    def delivery(self, delivery_id: str) -> str:
        """Hash: {status, sub, lease, doc}."""
        return f"{self._p}:dlv:{delivery_id}"

    @property
    def deliveries(self) -> str:
        """Sorted set: delivery id by creation time (ms), for listing."""
        return f"{self._p}:dlvs"

    @property
    def deliveries_due(self) -> str:
        return f"{self._p}:dlv_due"

    @property
    def deliveries_leases(self) -> str:
        return f"{self._p}:dlv_leases"

    @property
    def deliveries_dead(self) -> str:
        """Sorted set: dead deliveries by when they died (server ms), for counting them."""
        return f"{self._p}:dlv_dead"

    def parked(self, sub_id: str) -> str:
        """Sorted set: deliveries held while their subscription is disabled."""
        return f"{self._p}:parked:{sub_id}"

    OUTBOX_GROUP = "deliverers"
