"""One clock: a replica whose wall clock runs 40 s ahead shares due times, leases and
pauses with the others on Redis server time, so it neither steals nor delays work."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.delivery.signing import new_secret
from bridge.model import Role
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import auth, start_sim_and_receiver, wait_until, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

SKEW_S = 40.0


class SkewedClock:
    def __init__(self, skew_s: float) -> None:
        self.skew_s = skew_s

    def now(self) -> float:
        return time.time() + self.skew_s


async def test_a_skewed_replica_sends_no_event_twice(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> None:
    """Two replicas, one 40 s ahead: every event arrives once, and the skewed replica's
    registrations are polled at once rather than 40 s late."""
    sim, server, receiver = await start_sim_and_receiver()
    secret = new_secret()
    receiver.secrets["hooks"] = secret
    receiver.delay["hooks"] = 1.0  # deliveries stay in flight while the other replica claims
    cfg = write_config(tmp_path / "bridge.toml", server, redis_url=redis_server.url, prefix=prefix)
    cfg.write_text(
        cfg.read_text()
        + f"""
[delivery]
allow_private_targets = true
timeout = 2
lease_margin = 3

[[subscriptions]]
url = "{receiver.url("hooks")}"
secret = "{secret}"
"""
    )
    settings = load_settings(cfg)
    honest = Bridge(settings, redis_url=redis_server.url)
    # The skewed replica registers (API) and delivers; the honest one polls and delivers.
    skewed = Bridge(
        settings,
        redis_url=redis_server.url,
        roles={Role.API, Role.DELIVERER},
        local_clock=SkewedClock(SKEW_S),
    )
    await honest.start()
    await skewed.start()
    try:
        assert skewed.watchdog is not None
        offset = skewed.metrics.registry.get_sample_value("bridge_clock_offset_seconds")
        assert offset is not None and abs(offset + SKEW_S) < 1.0
        api = f"http://127.0.0.1:{skewed.api_port}"
        async with aiohttp.ClientSession(headers=auth()) as http:
            registered = time.monotonic()
            for i in range(40):
                sim.add_job(JobSpec(provider="fullstory", id=f"s{i}", duration=0.3 + (i % 5) * 0.2))
                resp = await http.post(
                    f"{api}/v1/watches", json={"source": "fs", "job_id": f"s{i}"}
                )
                assert resp.status == 201

            async def first_polls() -> bool:
                return len({r.path for r in sim.status_requests("fullstory")}) >= 40

            await wait_until(first_polls, 10, "a first poll of every job")
            assert time.monotonic() - registered < 10

            async def all_delivered() -> bool:
                return len({r.webhook_id for r in receiver.for_path("hooks")}) >= 40

            await wait_until(all_delivered, 30, "forty events")

            async def settled() -> bool:
                page = await (
                    await http.get(f"{api}/v1/deliveries?status=succeeded&limit=100")
                ).json()
                return len(page["items"]) == 40 and receiver.in_flight == 0

            await wait_until(settled, 30, "every delivery recorded and nothing in flight")
        times = Counter(r.webhook_id for r in receiver.for_path("hooks"))
        assert len(times) == 40 and max(times.values()) == 1, times.most_common(3)
        assert all(r.verified for r in receiver.for_path("hooks"))
    finally:
        await skewed.stop(1.0)
        await honest.stop(1.0)
        await receiver.close()
        await server.close()
