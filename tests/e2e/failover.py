"""Two bridge processes on a Redis topology (Sentinel, cluster): jobs finish, a fault
comes mid-run (a primary killed -9, or none), and every job still gets exactly one
verified event, with no bridge restarted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp

from bridge.sim.upstream import JobSpec
from tests.e2e.harness import (
    BridgeProcess,
    auth,
    config_toml,
    free_port,
    start_sim_and_receiver,
    subscribe,
    wait_for_api,
    wait_until,
)


async def one_event_per_job(
    tmp_path: Path,
    *,
    head: str,
    redis_url: str,
    fault: Callable[[], None] | None,
    args: tuple[str, ...] = (),
    jobs: int = 16,
) -> None:
    """head: the config's Redis lines (redis_mode, …); fault runs once some events are
    delivered, and returns once Redis serves again."""
    sim, server, receiver = await start_sim_and_receiver()
    procs, apis = [], []
    try:
        for i in range(2):
            port = free_port()
            cfg = tmp_path / f"bridge{i}.toml"
            text = config_toml(
                sim_url=str(server.make_url("")).rstrip("/"),
                redis_url=redis_url,
                prefix="bridge",
                port=port,
                extra='[delivery]\nallowed_targets = ["127.0.0.1"]\n',
            )
            cfg.write_text(head + text)
            proc = BridgeProcess(cfg, tmp_path / f"bridge{i}.log", *args)
            proc.start()
            procs.append(proc)
            apis.append(f"http://127.0.0.1:{port}")
        async with aiohttp.ClientSession(headers=auth()) as http:
            for api in apis:
                await wait_for_api(http, api, "/readyz")
            await subscribe(http, apis[0], receiver, "hook", event_types=["import.completed"])
            specs = [
                JobSpec(provider="fullstory", id=f"f{i}", duration=1 + i % 4) for i in range(jobs)
            ]
            for spec in specs:
                sim.add_job(spec)
            for n, spec in enumerate(specs):
                resp = await http.post(
                    f"{apis[n % 2]}/v1/watches", json={"source": "fs", "job_id": spec.id}
                )
                assert resp.status == 201, await resp.text()

            async def some_delivered() -> bool:
                return len(receiver.for_path("hook")) >= 3

            await wait_until(some_delivered, 30, "the first events")
            before = {r.body["data"]["job_id"] for r in receiver.for_path("hook")}
            if fault is not None:
                fault()

            async def all_delivered() -> bool:
                ids = {r.body["data"]["job_id"] for r in receiver.for_path("hook")}
                return ids >= {s.id for s in specs}

            await wait_until(all_delivered, 90, "every job's event")
            assert len(before) < len(specs)  # the fault came mid-run
            for api in apis:  # both still serve
                await wait_for_api(http, api, "/readyz")
        received = receiver.for_path("hook")
        assert all(r.verified for r in received)
        per_job: dict[str, set[str]] = {}
        for r in received:
            per_job.setdefault(r.body["data"]["job_id"], set()).add(r.webhook_id)
        assert all(len(ids) == 1 for ids in per_job.values()), per_job
        for proc in procs:
            assert proc.proc is not None and proc.proc.poll() is None  # never restarted
    finally:
        for proc in procs:
            proc.stop()
        await receiver.close()
        await server.close()
