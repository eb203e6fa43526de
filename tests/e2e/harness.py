"""Real-socket harness: the simulator on loopback, bridges in-process or as processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp.test_utils import TestServer

from bridge.sim.upstream import Simulator

if TYPE_CHECKING:
    import aiohttp

    from bridge.app import Bridge
    from tests.e2e.receiver import Receiver

TOKEN = "e2e-admin-token-0123456789"


async def start_sim(sim: Simulator) -> TestServer:
    server = TestServer(sim.app(), host="127.0.0.1")
    await server.start_server()
    return server


# Ports handed out for a child process to listen on: below the kernel's ephemeral range
# (32768-60999 by default), where every outgoing connection and every port-0 listener
# takes its port, so one of those cannot take it between this check and the child's
# bind; never the same one twice in a run.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    while True:
        port = random.randrange(20000, 32000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


def config_toml(
    *,
    sim_url: str,
    redis_url: str,
    prefix: str,
    port: int = 0,
    fs_rate: float = 0,
    td_rate: float = 0,
    min_interval: float = 0.1,
    max_interval: float = 0.5,
    extra: str = "",
) -> str:
    return f"""
redis_url = "{redis_url}"
key_prefix = "{prefix}"
[api]
listen = "127.0.0.1:{port}"
tokens = ["{TOKEN}"]
[poll]
min_interval = {min_interval}
max_interval = {max_interval}
tick = 0.05
request_timeout = 2
lease = 5
{extra}
[sources.fs]
provider = "fullstory"
api_key = "sim-fullstory-key"
base_url = "{sim_url}"
rate_limit = {fs_rate}
[sources.td]
provider = "talkdesk"
account = "acme"
client_id = "sim-client"
client_secret = "sim-secret"
base_url = "{sim_url}"
token_url = "{sim_url}/oauth/token"
rate_limit = {td_rate}
"""


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, step_s: float = 0.05
) -> None:
    """Wait for a condition observed from outside (another process or socket)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(step_s)


class BridgeProcess:
    """`python -m bridge run` as a real child process."""

    def __init__(self, config: Path, log: Path, *extra_args: str) -> None:
        self.config = config
        self.log = log
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bridge",
                    "run",
                    "--config",
                    str(self.config),
                    *self.extra_args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def job_path(provider: str, kind: str, job_id: str) -> str:
    return (
        f"/v2/{kind}/batch/{job_id}"
        if provider == "fullstory"
        else f"/bulk-imports/{kind}/{job_id}"
    )


def max_in_window(times: list[float], window_s: float) -> int:
    """Most requests in any window of window_s seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def events_by_watch(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events:
        out.setdefault(e["watch_id"], []).append(e["type"])
    return out


async def wait_for_api(
    http: Any, api: str, path: str = "/livez", ok: tuple[int, ...] = (200,), timeout_s: float = 30
) -> None:
    """Wait until a bridge (a child process, say) answers on its admin API."""
    import aiohttp

    async def up() -> bool:
        try:
            return (await http.get(f"{api}{path}")).status in ok
        except aiohttp.ClientError:
            return False

    await wait_until(up, timeout_s, f"{api}{path} to answer")


async def start_sim_and_receiver() -> tuple[Simulator, TestServer, Receiver]:
    from tests.e2e.receiver import Receiver

    sim = Simulator()
    server = await start_sim(sim)
    receiver = Receiver()
    await receiver.start()
    return sim, server, receiver


def write_config(path: Path, server: TestServer, **fields: Any) -> Path:
    """config_toml pointed at this simulator, written to path."""
    path.write_text(config_toml(sim_url=str(server.make_url("")).rstrip("/"), **fields))
    return path


@dataclass
class RunningBridge:
    """A simulator, a verifying receiver and one bridge (in this process) on them."""

    sim: Simulator
    server: TestServer
    receiver: Receiver
    bridge: Bridge
    http: aiohttp.ClientSession
    api: str

    async def subscribe(self, path: str, **fields: Any) -> dict[str, Any]:
        return await subscribe(self.http, self.api, self.receiver, path, **fields)


async def subscribe(
    http: aiohttp.ClientSession, api: str, receiver: Receiver, path: str, **fields: Any
) -> dict[str, Any]:
    """Subscribe the receiver's `path`; the receiver verifies with the new secret."""
    resp = await http.post(f"{api}/v1/subscriptions", json={"url": receiver.url(path), **fields})
    assert resp.status == 201, await resp.text()
    sub: dict[str, Any] = await resp.json()
    receiver.secrets[path] = sub["secret"]
    return sub


@contextlib.asynccontextmanager
async def running_bridge(
    tmp_path: Path,
    redis_url: str,
    prefix: str,
    *,
    edit: Callable[[str], str] = lambda text: text,
    **fields: Any,
) -> AsyncIterator[RunningBridge]:
    """config_toml(**fields), changed by `edit`, run against a fresh simulator."""
    from aiohttp import ClientSession

    from bridge.app import Bridge
    from bridge.settings import load_settings

    sim, server, receiver = await start_sim_and_receiver()
    cfg = write_config(
        tmp_path / "bridge.toml", server, redis_url=redis_url, prefix=prefix, **fields
    )
    cfg.write_text(edit(cfg.read_text()))
    bridge = Bridge(load_settings(cfg), redis_url=redis_url)
    await bridge.start()
    http = ClientSession(headers=auth())
    try:
        yield RunningBridge(
            sim, server, receiver, bridge, http, f"http://127.0.0.1:{bridge.api_port}"
        )
    finally:
        await http.close()
        await bridge.stop(grace_s=1)
        await receiver.close()
        await server.close()
