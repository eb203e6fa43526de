"""GET /v1/status: what `import-bridge status` shows — watches, sources, queues."""

from __future__ import annotations

from typing import Any

from bridge.api.context import Answer, Call
from bridge.api.models import iso
from bridge.api.scope import allows
from bridge.store.redis import RedisStore


async def status(call: Call) -> Answer:
    ctx = call.ctx
    store = ctx.store
    sources: dict[str, Any] = {}
    backlogs = await store.backlogs()
    for name in [n for n in ctx.source_kinds if allows(call.scope, n)]:
        health = await store.sources.get_health(name)
        sources[name] = {
            "healthy": health.healthy,
            "reason": health.reason,
            "since": iso(health.since),
            "paused_for_s": round(await store.sources.pause_left(name), 3),
            "budget_used": await _budget(store, name, ctx.source_rates.get(name, 0.0)),
            "waiting_for_budget": backlogs.get(name, 0),
        }
    if call.scope is not None:  # a tenant's token: its sources, not the fleet's figures
        return Answer({"sources": sources})
    body: dict[str, Any] = {"watches": await store.watch_counts(), "sources": sources}
    if ctx.deliveries is not None:
        subs = await ctx.deliveries.list_subscriptions()
        body["subscriptions"] = {
            "total": len(subs),
            "enabled": sum(1 for s in subs if s.enabled),
            "disabled": sum(1 for s in subs if not s.enabled),
        }
        body["queues"] = await ctx.deliveries.queue_counts([s.id for s in subs])
    return Answer(body)


async def _budget(store: RedisStore, source: str, rate: float) -> float | None:
    used = await store.sources.budget_used(source, rate)
    return None if used is None else round(used, 3)
