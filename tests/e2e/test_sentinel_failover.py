"""Two bridge processes on a primary behind Sentinel: the primary is killed -9 while
jobs finish, a replica is promoted, and every job still gets exactly one verified
event, with no bridge restarted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.failover import one_event_per_job
from tests.topologies import MASTER, SentinelSet

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
SENTINEL_PASSWORD = "sentinel-secret-e2e"


async def test_a_primary_killed_mid_run_loses_no_event(tmp_path: Path) -> None:
    sentinels = SentinelSet(tmp_path / "redis", password=SENTINEL_PASSWORD)
    (tmp_path / "redis").mkdir()
    sentinels.start()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "bridge_redis_sentinel_password").write_text(SENTINEL_PASSWORD)
    addresses = ", ".join(f'"127.0.0.1:{p}"' for p in sentinels.sentinel_ports)
    head = (
        f'redis_mode = "sentinel"\nredis_sentinels = [{addresses}]\n'
        f'redis_sentinel_master = "{MASTER}"\n'
    )

    def kill_primary() -> None:
        sentinels.wait_for_promotion(sentinels.kill_primary())

    try:
        await one_event_per_job(
            tmp_path,
            head=head,
            redis_url="redis://primary-named-by-sentinel/0",
            fault=kill_primary,
            args=("--secrets-dir", str(secrets)),
        )
    finally:
        sentinels.stop()
