"""Liveness, readiness and metrics: what a load balancer and Prometheus ask."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bridge.api.context import CTX
from bridge.errors import failure_name

READY_WITHIN_S = 1.5  # /readyz answers 503 this soon when Redis does not answer


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Whether this process can do its work: Redis answers and its loops run. Upstream
    credentials are not part of it (see /v1/status): one bad key must not take every
    replica out of its Service."""
    ctx = request.app[CTX]
    checks: dict[str, Any] = {}
    try:  # a silent Redis is told within READY_WITHIN_S, not after a command's timeout
        async with asyncio.timeout(READY_WITHIN_S):
            await ctx.store.ping()
    except Exception as exc:  # any failure to reach Redis means not ready
        checks["redis"] = f"unreachable: {failure_name(exc)}"
        return web.json_response({"status": "unavailable", "checks": checks}, status=503)
    checks.update(ctx.readiness())
    checks["redis"] = "ok"
    ready = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[CTX].metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")
