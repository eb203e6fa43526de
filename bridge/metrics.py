"""Prometheus metrics, one registry per bridge instance (tests build many)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bridge.event_types import CATALOGUE
from bridge.trends import DELIVERY_OUTCOMES, NOTICE_BOUNDS, Tally

POLL_RESULTS = ("ok", "error", "not_found", "rate_limited", "auth_error")
LAG_KINDS = ("first", "replay", "ping", "progress")
# What a guard against hostile or broken input did instead of taking it as it came.
GUARDS = ("discovery_cap", "discovery_link_rehomed", "event_job_omitted")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The same observations, fleet-wide over time, for the console's charts
        self.tally = Tally()
        r = self.registry
        self.polls = Counter(
            "bridge_polls", "Upstream status requests by result", ["source", "result"], registry=r
        )
        self.poll_seconds = Histogram(
            "bridge_poll_duration_seconds",
            "Upstream status request latency",
            ["source"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.events = Counter(
            "bridge_events_generated", "Events written to the outbox", ["type"], registry=r
        )
        self.source_healthy = Gauge(
            "bridge_source_healthy", "1 when the source's credentials work", ["source"], registry=r
        )
        self.budget_used = Gauge(
            "bridge_source_budget_used_ratio",
            "Requests granted fleet-wide in the last 10 s, as a share of rate_limit",
            ["source"],
            registry=r,
        )
        self.paused = Gauge(
            "bridge_source_paused_seconds",
            "Seconds left in the source's fleet-wide 429 pause (0 when not paused)",
            ["source"],
            registry=r,
        )
        self.time_to_notice = Histogram(
            "bridge_time_to_notice_seconds",
            "From the upstream's own finished time to the poll that saw it",
            ["source"],
            registry=r,
            buckets=NOTICE_BOUNDS,
        )
        self.requests_per_job = Histogram(
            "bridge_requests_per_job",
            "Status requests a job took until its terminal status was seen",
            ["source"],
            registry=r,
            buckets=(1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377),
        )
        self.in_flight = Gauge(
            "bridge_polls_in_flight", "Polls under way in this process", registry=r
        )

        self.deliveries = Counter(
            "bridge_deliveries", "Delivery attempts by outcome", ["outcome"], registry=r
        )
        self.delivery_seconds = Histogram(
            "bridge_delivery_attempt_duration_seconds",
            "Webhook request latency",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.delivery_lag = Histogram(
            "bridge_delivery_lag_seconds",
            "From event generation to the receiver's 2xx; kind: first (an event's own "
            "delivery), replay, ping",
            ["kind"],
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
        )
        self.delivery_queue = Gauge(
            "bridge_delivery_queue_depth", "Deliveries waiting for an attempt", registry=r
        )
        self.dead = Counter("bridge_deliveries_dead", "Deliveries dead-lettered", registry=r)

        self.guarded = Counter(
            "bridge_guarded",
            "Input refused, cut or redirected by a bound: discovery_cap (an import not "
            "watched), discovery_link_rehomed (a next link to another host followed on the "
            "configured one), event_job_omitted (an upstream body too large for an event)",
            ["guard"],
            registry=r,
        )
        self.redis_up = Gauge("bridge_redis_up", "1 while Redis answers this process", registry=r)
        self.redis_data_lost = Counter(
            "bridge_redis_data_lost",
            "Times this process found Redis emptied (restart without data, failover, flush)",
            registry=r,
        )
        self.clock_offset = Gauge(
            "bridge_clock_offset_seconds", "Redis server time minus this host's clock", registry=r
        )

    def forget(self, source: str) -> None:
        """A source deleted through the API: its series go (they would pile up)."""
        for metric, labels in (
            *((self.polls, (source, r)) for r in POLL_RESULTS),
            (self.poll_seconds, (source,)),
            (self.source_healthy, (source,)),
            (self.budget_used, (source,)),
            (self.paused, (source,)),
            (self.time_to_notice, (source,)),
            (self.requests_per_job, (source,)),
        ):
            with contextlib.suppress(KeyError):
                metric.remove(*labels)

    def declare(self, sources: Iterable[str]) -> None:
        """Every labelled series from the start, at zero (health: 1 until seen otherwise),
        so dashboards and alerts see a series before the first change."""
        for source in sources:
            for result in POLL_RESULTS:
                self.polls.labels(source, result)
            self.poll_seconds.labels(source)
            self.source_healthy.labels(source).set(1)
            self.budget_used.labels(source)
            self.paused.labels(source)
            self.time_to_notice.labels(source)
            self.requests_per_job.labels(source)
        for event_type in CATALOGUE:
            self.events.labels(event_type)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome)
        for kind in LAG_KINDS:
            self.delivery_lag.labels(kind)
        for guard in GUARDS:
            self.guarded.labels(guard)

    def render(self) -> bytes:
        return generate_latest(self.registry)
