"""Fuzz the admin API with schemathesis against a real `bridge run` (embedded Redis,
simulator upstream), then read every exchange it recorded: 0 answers of 5xx, every 4xx
in the one error shape, and no admin token or secret in the bridge's log.

    python tests/chaos/fuzz_api.py [--max-time 60]

Exit 0 when all hold; prints the counts. Needs schemathesis (`make chaos` installs it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

TOKEN = "chaos-admin-token-" + os.urandom(8).hex()
SIM_KEY = "sim-fullstory-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-time", type=int, default=60)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bridge-chaos-"))
    sim_port, api_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    config = work / "bridge.toml"
    config.write_text(
        f"""
[api]
listen = "127.0.0.1:{api_port}"
tokens = ["{TOKEN}"]
[delivery]
allow_private_targets = true
[sources.fs]
provider = "fullstory"
api_key = "{SIM_KEY}"
base_url = "{sim_url}"
[sources.td]
provider = "talkdesk"
account = "acme"
client_id = "sim-client"
client_secret = "sim-secret"
base_url = "{sim_url}"
token_url = "{sim_url}/oauth/token"
"""
    )
    bridge_cmd = [sys.executable, "-m", "bridge"]
    log = (work / "bridge.log").open("wb")
    sim_log = (work / "sim.log").open("wb")  # the simulator prints its own test keys
    sim = subprocess.Popen(
        [*bridge_cmd, "sim", "--listen", f"127.0.0.1:{sim_port}"], stdout=sim_log, stderr=sim_log
    )
    bridge = subprocess.Popen(
        [*bridge_cmd, "run", "--config", str(config), "--data-dir", str(work / "data")],
        stdout=log,
        stderr=log,
    )
    har = work / "exchanges.har"
    try:
        st = Path(sys.executable).with_name("st")
        subprocess.run(
            [
                str(st),
                "run",
                f"http://127.0.0.1:{api_port}/openapi.json",
                "-H",
                f"Authorization: Bearer {TOKEN}",
                "--checks",
                "not_a_server_error",
                "--max-time",
                str(args.max_time),
                "--wait-for-schema",
                "30",  # the bridge is starting meanwhile
                # An SSE stream never ends by design; long polls are cut short (the
                # pull feed has its own tests).
                "--exclude-path",
                "/v1/events/stream",
                # A source's check asks its upstream (a source the fuzzer defines may
                # name a real vendor's host): it has its own tests; nothing leaves
                # the loopback here.
                "--exclude-path",
                "/v1/sources/{name}/check",
                "--request-timeout",
                "5",
                "--report",
                "har",
                "--report-har-path",
                str(har),
                "--report-preserve-bytes",
                "--generation-database",
                "none",
                "--no-color",
            ],
            check=False,
            stdout=subprocess.DEVNULL,
        )
    finally:
        bridge.terminate()
        bridge.wait(30)
        sim.terminate()
        sim.wait(10)
        log.close()
        sim_log.close()
    return report(har, work / "bridge.log")


def report(har: Path, log: Path) -> int:
    if not har.exists():
        print(f"no exchanges recorded: did the bridge start? see {log}")
        return 1
    entries = json.loads(har.read_text())["log"]["entries"]
    total = len(entries)
    server_errors = 0
    braked = 0  # 429 too_many_failures: the sign-in brake answered instead of a handler
    off_shape: list[str] = []
    for entry in entries:
        resp = entry["response"]
        status = int(resp["status"])
        if status >= 500:
            server_errors += 1
        if status == 429:
            braked += 1
        if 400 <= status < 500:
            content = resp.get("content", {})
            text = content.get("text", "")
            if content.get("encoding") == "base64":
                text = base64.b64decode(text).decode("utf-8", "replace")
            try:
                body = json.loads(text)
                ok = isinstance(body, dict) and {"code", "message", "fields"} <= body.keys()
            except ValueError:
                ok = False
            if not ok:
                off_shape.append(
                    f"{status} {entry['request']['method']} {entry['request']['url'][:80]}"
                )
    log_text = log.read_text(errors="replace")
    leaks = log_text.count(TOKEN) + log_text.count(SIM_KEY) + log_text.count("sim-secret")
    tracebacks = log_text.count("Traceback")
    print(
        f"requests: {total}, 5xx: {server_errors}, 429: {braked}, "
        f"off-shape 4xx: {len(off_shape)}, "
        f"secrets in log: {leaks}, tracebacks in log: {tracebacks}"
    )
    for line in off_shape[:10]:
        print("  off-shape:", line)
    return (
        0 if total and not server_errors and not off_shape and not leaks and not tracebacks else 1
    )


if __name__ == "__main__":
    sys.exit(main())
