"""`import-bridge demo`: the simulator, the bridge on the embedded Redis and a receiver that
verifies every webhook, with a live view of the jobs until each one's event arrived.

Everything talks over loopback sockets exactly as in production: the bridge polls the
simulated FullStory and Talkdesk APIs, and the demo itself uses the admin API to
subscribe the receiver and watch the jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from bridge import logs
from bridge.app import Bridge
from bridge.settings import Settings, load_settings
from bridge.sim.receiver import Received, VerifyingReceiver
from bridge.sim.upstream import JobSpec, Simulator
from bridge.store.connection import connect
from bridge.store.embedded import EmbeddedRedis

REFRESH_S = 0.25  # the live view's beat

DEMO_JOBS = (
    JobSpec(provider="talkdesk", id="td-canceled-3", duration=3, final_status="CANCELED"),
    JobSpec(provider="fullstory", kind="users", id="fs-users-1", duration=4, total=1200),
    JobSpec(
        provider="talkdesk",
        id="td-errors-4",
        duration=6,
        total=300,
        failed=12,
        final_status="COMPLETED_WITH_ERRORS",
    ),
    JobSpec(
        provider="fullstory",
        kind="events",
        id="fs-events-2",
        duration=8,
        total=5000,
        failed=130,
        final_status="FAILED",
    ),
    JobSpec(provider="talkdesk", id="td-import-5", duration=10, total=800),
)


@dataclass
class DemoJob:
    spec: JobSpec
    created: float
    watch: dict[str, Any] | None = None
    event: Received | None = None

    @property
    def source(self) -> str:
        return "fs" if self.spec.provider == "fullstory" else "td"

    @property
    def finished_at(self) -> float:
        return self.created + self.spec.duration

    def notify_s(self) -> float | None:
        return self.event.at - self.finished_at if self.event else None


def run_demo(*, data_dir: Path, forever: bool, timeout_s: float) -> int:
    logs.configure("WARNING")
    console = Console()
    redis = EmbeddedRedis((data_dir / "demo").resolve())
    redis.start()
    console.print(f"embedded Redis at {redis.socket}; set redis_url for production", style="dim")
    try:
        return asyncio.run(_demo(console, redis.url, redis.sealing_keys([])[0], forever, timeout_s))
    except (RuntimeError, aiohttp.ClientError, OSError) as exc:
        console.print(f"[red]demo failed: {exc}[/]")
        return 1
    finally:
        redis.stop()


SIM_PORT = 8900  # where the README's curl lines add jobs (another port when it is taken)


async def _serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    except OSError:  # taken: any free one
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, bound = runner.addresses[0][:2]
    return runner, f"http://{host}:{bound}"


async def _demo(
    console: Console, redis_url: str, key: bytes, forever: bool, timeout_s: float
) -> int:
    client = connect(redis_url)
    await client.flushdb()  # the demo's own Redis: every run starts clean
    await client.aclose()
    sim = Simulator()
    receiver = VerifyingReceiver()
    sim_runner, sim_url = await _serve(sim.app(), SIM_PORT)
    rec_runner, rec_url = await _serve(receiver.app())
    token = secrets.token_urlsafe(16)
    bridge = Bridge(_settings(sim_url, token), redis_url=redis_url, sealing_keys=[key])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await bridge.start()
    api = f"http://127.0.0.1:{bridge.api_port}"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            jobs = await _set_up(http, api, sim, receiver, rec_url)
            receiver.on_receive = lambda r: console.print(_event_line(r), soft_wrap=True)
            console.print(
                f"admin API at {api} (token {token}); simulator at {sim_url} (POST "
                f"{sim_url}/_sim/jobs adds a job); receiver at {rec_url}/webhooks "
                "verifies each webhook with the standardwebhooks package",
                style="dim",
            )
            await _watch_live(console, http, api, jobs, receiver, stop, forever, timeout_s)
    finally:
        await bridge.stop(grace_s=2)
        await rec_runner.cleanup()
        await sim_runner.cleanup()
    return _summary(console, jobs)


def _settings(sim_url: str, token: str) -> Settings:
    return load_settings(
        overrides={
            "key_prefix": "demo",
            "api": {"listen": "127.0.0.1:0", "tokens": [token]},
            "poll": {"min_interval": 0.5, "max_interval": 1.5, "tick": 0.1, "lease": 40},
            "delivery": {"allow_private_targets": True, "retry_schedule": [1, 2, 5]},
            "sources": {
                "fs": {"provider": "fullstory", "api_key": "sim-fullstory-key",
                       "base_url": sim_url, "rate_limit": 10},
                "td": {"provider": "talkdesk", "account": "demo", "client_id": "sim-client",
                       "client_secret": "sim-secret", "base_url": sim_url,
                       "token_url": f"{sim_url}/oauth/token", "rate_limit": 5},
            },
        }
    )  # fmt: skip


async def _set_up(
    http: aiohttp.ClientSession,
    api: str,
    sim: Simulator,
    receiver: VerifyingReceiver,
    rec_url: str,
) -> list[DemoJob]:
    """Subscribe the receiver and watch each job, through the admin API."""
    sub = await _call(
        http,
        "POST",
        f"{api}/v1/subscriptions",
        {"url": f"{rec_url}/webhooks", "event_types": ["import.*"], "description": "demo"},
    )
    receiver.secret = sub["secret"]
    jobs = []
    for spec in DEMO_JOBS:
        job = DemoJob(spec, sim.add_job(spec).created)
        body = {"source": job.source, "kind": spec.kind, "job_id": spec.id}
        job.watch = await _call(http, "POST", f"{api}/v1/watches", body)
        jobs.append(job)
    return jobs


async def _call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as resp:
        data = await resp.json()
        if resp.status >= 400:
            raise RuntimeError(f"{method} {url}: {resp.status} {data}")
        return data


async def _watch_live(
    console: Console,
    http: aiohttp.ClientSession,
    api: str,
    jobs: list[DemoJob],
    receiver: VerifyingReceiver,
    stop: asyncio.Event,
    forever: bool,
    timeout_s: float,
) -> None:
    deadline = time.monotonic() + timeout_s
    with Live(_view(jobs), console=console, refresh_per_second=8) as live:
        while not stop.is_set():
            page = await _call(http, "GET", f"{api}/v1/watches?limit=50")
            by_id = {w["id"]: w for w in page["items"]}
            for job in jobs:
                if job.watch and job.watch["id"] in by_id:
                    job.watch = by_id[job.watch["id"]]
                job.event = job.event or _event_for(job, receiver.received)
            live.update(_view(jobs))
            if not forever and (all(j.event for j in jobs) or time.monotonic() > deadline):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REFRESH_S)


def _event_for(job: DemoJob, received: list[Received]) -> Received | None:
    """The job's terminal event, once it arrived verified."""
    for r in received:
        if (
            r.verified
            and r.data.get("source") == job.source
            and r.data.get("job_id") == job.spec.id
        ):
            return r
    return None


def _view(jobs: list[DemoJob]) -> Table:
    now = time.time()
    table = Table(title="import jobs", expand=False)
    for col in ("source", "job", "upstream", "status", "polls", "notified"):
        table.add_column(col)
    for job in jobs:
        frac = min(1.0, max(0.0, (now - job.created) / job.spec.duration))
        watch = job.watch or {}
        notify = job.notify_s()
        table.add_row(
            f"{job.source}/{job.spec.kind}",
            job.spec.id,
            ProgressBar(total=1.0, completed=frac, width=16),
            str(watch.get("status") or "…"),
            str(watch.get("polls", 0)),
            f"[green]✔ {notify:.1f} s[/]" if notify is not None else "…",
        )
    return table


def _event_line(r: Received) -> str:
    mark = "[green]✔ verified[/]" if r.verified else "[red]✘ NOT verified[/]"
    counts = r.data.get("counts") or {}
    shown = " ".join(f"{k}={v}" for k, v in counts.items() if v is not None)
    return (
        f"{mark} {r.type:<28} {r.data.get('source')}/{r.data.get('job_id'):<14} {shown}"
        f"\n           webhook-id {r.webhook_id}"
    )


def _summary(console: Console, jobs: list[DemoJob]) -> int:
    console.print()
    missing = [j.spec.id for j in jobs if not (j.event and j.event.verified)]
    if missing:
        console.print(f"[red]no verified event for: {', '.join(missing)}[/]")
        return 1
    waits = sorted(j.notify_s() or 0.0 for j in jobs)
    console.print(
        f"[bold green]all {len(jobs)} jobs notified and verified[/]; "
        f"time from job end to verified webhook: {waits[0]:.1f} to {waits[-1]:.1f} s"
    )
    return 0
