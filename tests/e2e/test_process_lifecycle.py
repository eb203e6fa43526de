"""`bridge run` as a real process: start-up failures end fast with one clear line, and
SIGTERM under load stops every claim at once and exits within grace + 2 s."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bridge.delivery.signing import new_secret
from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import (
    TOKEN,
    BridgeProcess,
    auth,
    free_port,
    start_sim_and_receiver,
    wait_for_api,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.e2e]

BASE = f"""
key_prefix = "life"
[api]
listen = "127.0.0.1:{{port}}"
tokens = ["{TOKEN}"]
"""


def run_bridge(args: list[str], timeout_s: float = 15) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def redis_alive(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(socket_path))
        except OSError:
            return False
        return True


def test_port_in_use_exits_fast_and_leaves_no_redis(tmp_path: Path) -> None:
    """The API port taken: exit 1 within seconds, one line, no traceback, no orphan."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg = tmp_path / "bridge.toml"
        cfg.write_text(BASE.format(port=port))
        data = tmp_path / "data"
        code, out, took = run_bridge(["run", "--config", str(cfg), "--data-dir", str(data)])
    assert code == 1 and took < 10, (code, took, out)
    print(f"measured: port in use, exit 1 after {took:.2f} s")
    assert f"api.listen: cannot listen on 127.0.0.1:{port}" in out
    assert "Traceback" not in out
    assert not redis_alive(data / "redis.sock")


@pytest.mark.parametrize(
    ("top", "tail", "expected"),
    [
        ("", '[[subscriptions]]\nurl = "https://10.0.0.1/hook"\n', "subscriptions[0].url"),
        ("", '[[subscriptions]]\nurl = "https://h.example/h"\nheaders = {Host = "x"}\n', "Host"),
        ("", '[[subscriptions]]\nurl = "https://h.example/h"\nsecret = "nope"\n', "secret"),
        ('redis_url = "http://localhost:6379"\n', "", "redis_url"),
        ("", '[delivery]\nallowed_targets = ["not a host"]\n', "allowed_targets"),
    ],
)
def test_bad_config_fails_check_and_run_alike(
    tmp_path: Path, top: str, tail: str, expected: str
) -> None:
    """`config check` runs exactly the validation `run` does: both refuse, naming the key."""
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(top + BASE.format(port=free_port()) + tail)
    data = str(tmp_path / "data")
    for args in (["config", "check", str(cfg)], ["run", "--config", str(cfg), "--data-dir", data]):
        code, out, took = run_bridge(args)
        assert code == 1 and took < 10, (args, code, out)
        assert "config error" in out and expected in out and "Traceback" not in out, out


def test_unreachable_redis_and_unwritable_data_dir(tmp_path: Path) -> None:
    """Each is one line naming the cause, exit 1, no traceback."""
    cfg = tmp_path / "bridge.toml"
    cfg.write_text('redis_url = "redis://127.0.0.1:1/0"\n' + BASE.format(port=free_port()))
    code, out, took = run_bridge(["run", "--config", str(cfg)])
    assert code == 1 and took < 15 and "redis_url" in out and "Traceback" not in out, out
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg.write_text(BASE.format(port=free_port()))
    code, out, _ = run_bridge(["run", "--config", str(cfg), "--data-dir", str(blocker / "x")])
    assert code == 1 and "--data-dir" in out and "Traceback" not in out, out


@pytest.mark.redis
async def test_sigterm_under_load(tmp_path: Path, redis_server: EmbeddedRedis, prefix: str) -> None:
    """Under load (slow receiver, jobs finishing): after SIGTERM no webhook request starts,
    and the process exits within shutdown_grace + 2 s."""
    grace = 2.0
    sim, server, receiver = await start_sim_and_receiver()
    receiver.delay["slow"] = 30.0
    secret = new_secret()
    receiver.secrets["slow"] = secret
    port = free_port()
    cfg = write_config(
        tmp_path / "bridge.toml", server, redis_url=redis_server.url, prefix=prefix, port=port
    )
    cfg.write_text(
        f"shutdown_grace = {grace}\n"
        + cfg.read_text()
        + f"""
[delivery]
allow_private_targets = true
concurrency = 16
per_subscription_concurrency = 4
timeout = 60

[[subscriptions]]
url = "{receiver.url("slow")}"
secret = "{secret}"
"""
    )
    bridge = BridgeProcess(cfg, tmp_path / "bridge.log")
    bridge.start()
    api = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            await wait_for_api(http, api, "/readyz")
            for i in range(40):
                sim.add_job(JobSpec(provider="fullstory", id=f"j{i}", duration=0.1 + i * 0.05))
                await http.post(f"{api}/v1/watches", json={"source": "fs", "job_id": f"j{i}"})

            async def busy() -> bool:
                return len(receiver.for_path("slow")) >= 4

            await wait_until(busy, 20, "requests in flight")
            assert bridge.proc is not None
            signalled = time.time()
            bridge.proc.send_signal(signal.SIGTERM)
            proc = bridge.proc
            await asyncio.to_thread(proc.wait, grace + 10)
            took = time.time() - signalled
            print(f"measured: SIGTERM to exit {took:.2f} s (grace {grace:g} s)")
            assert proc.returncode == 0, (tmp_path / "bridge.log").read_text()[-2000:]
            assert took <= grace + 2, f"exit took {took:.1f} s"
            late = [r for r in receiver.received if r.t > signalled + 0.05]
            assert late == [], f"{len(late)} requests started after SIGTERM"
            assert "Traceback" not in (tmp_path / "bridge.log").read_text()
    finally:
        bridge.kill()
        await receiver.close()
        await server.close()
