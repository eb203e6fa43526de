"""Two bridge processes on a real Redis Cluster (three primaries, a replica each):
every job gets exactly one verified event, and still does when the primary that holds
the bridge's keys is killed -9 mid-run and its replica takes over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.failover import one_event_per_job
from tests.topologies import ClusterSet

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
HEAD = 'redis_mode = "cluster"\n'


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    topology = ClusterSet(tmp_path / "cluster")
    (tmp_path / "cluster").mkdir()
    topology.start()
    yield topology
    topology.stop()


async def test_two_replicas_on_a_cluster_send_one_event_per_job(
    tmp_path: Path, cluster: ClusterSet
) -> None:
    await one_event_per_job(tmp_path, head=HEAD, redis_url=cluster.url, fault=None)


async def test_a_cluster_primary_killed_mid_run_loses_no_event(
    tmp_path: Path, cluster: ClusterSet
) -> None:
    def kill_the_bridges_primary() -> None:
        port = cluster.primary_of("{bridge}")
        cluster.kill(port)
        cluster.wait_for_promotion(port)

    await one_event_per_job(
        tmp_path, head=HEAD, redis_url=cluster.url, fault=kill_the_bridges_primary
    )
