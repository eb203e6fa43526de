"""Every admin command of the `bridge` CLI, run as a child process against a running
bridge (simulator → bridge → verifying receiver), with --json parsed as a script would."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec, Simulator
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import TOKEN, start_sim_and_receiver, wait_until, write_config
from tests.e2e.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


@dataclass
class Cli:
    api: str
    sim: Simulator
    receiver: Receiver
    cwd: Path

    async def __call__(self, *args: str, token: str | None = TOKEN) -> Result:
        env = {**os.environ, "BRIDGE_API_URL": self.api}
        env.pop("BRIDGE_API_TOKEN", None)
        if token is not None:
            env["BRIDGE_API_TOKEN"] = token
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=self.cwd,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def cli(tmp_path: Path, redis_server: EmbeddedRedis, prefix: str) -> AsyncIterator[Cli]:
    sim, server, receiver = await start_sim_and_receiver()
    cfg = write_config(
        tmp_path / "bridge.toml",
        server,
        redis_url=redis_server.url,
        prefix=prefix,
        extra="[delivery]\nallow_private_targets = true\n",
    )
    bridge = Bridge(load_settings(cfg), redis_url=redis_server.url)
    await bridge.start()
    yield Cli(f"http://127.0.0.1:{bridge.api_port}", sim, receiver, tmp_path)
    await bridge.stop(grace_s=1)
    await receiver.close()
    await server.close()


async def test_watch_sub_events_deliveries_status(cli: Cli) -> None:
    """The whole loop from the command line: subscribe, watch, see the event and its
    delivery, replay it, ping, rotate, disable/enable, status, remove."""
    sub = (
        await cli(
            "sub", "add", cli.receiver.url("cli"), "--event-type", "import.*",
            "--header", "X-Team: data", "--description", "from the CLI", "--json",
        )
    ).json()  # fmt: skip
    assert sub["id"].startswith("sub_") and sub["secret"].startswith("whsec_")
    cli.receiver.secrets["cli"] = sub["secret"]
    listed = (await cli("sub", "ls", "--json")).json()
    assert [s["id"] for s in listed["items"]] == [sub["id"]]
    assert sub["secret"] not in json.dumps(listed)
    human = await cli("sub", "ls")
    assert human.code == 0 and sub["id"] in human.out and "URL" in human.out
    shown = (await cli("sub", "show", sub["id"], "--json")).json()
    assert shown["headers"] == ["X-Team"] and shown["description"] == "from the CLI"

    cli.sim.add_job(JobSpec(provider="fullstory", id="cli-job", duration=0.2))
    watch = (await cli("watch", "add", "fs", "cli-job", "--kind", "users", "--json")).json()
    again = (await cli("watch", "add", "fs", "cli-job", "--json")).json()
    assert again["id"] == watch["id"]
    told = await cli("watch", "add", "fs", "cli-job")
    assert told.code == 0 and f"already watched: {watch['id']}" in told.out

    async def delivered() -> bool:
        return len(cli.receiver.for_path("cli")) >= 1

    await wait_until(delivered, 20, "the webhook")
    [first] = cli.receiver.for_path("cli")
    assert first.verified and first.headers.get("x-team") == "data"
    shown_watch = (await cli("watch", "show", watch["id"], "--json")).json()
    assert shown_watch["state"] == "terminal" and shown_watch["outcome"] == "completed"
    watches = (await cli("watch", "ls", "--state", "terminal", "--all", "--json")).json()
    assert [w["id"] for w in watches["items"]] == [watch["id"]]
    assert "cli-job" in (await cli("watch", "ls")).out
    by_job = (await cli("watch", "show", "fs/cli-job", "--json")).json()  # people know jobs
    assert by_job["id"] == watch["id"]
    listed_by_job = await cli("watch", "ls", "--source", "fs", "--job-id", "cli-job", "--json")
    assert [w["id"] for w in listed_by_job.json()["items"]] == [watch["id"]]
    unknown = await cli("watch", "show", "fs/never-watched")
    assert unknown.code == 1 and "no watch for job 'never-watched'" in unknown.err
    assert (await cli("watch", "ls", "--job-id", "cli-job")).code != 0  # needs --source

    events = (await cli("events", "ls", "--watch-id", watch["id"], "--json")).json()
    [event] = events["items"]
    assert event["id"] == first.webhook_id and event["type"] == "import.completed"
    assert (await cli("events", "show", event["id"], "--json")).json()["watch_id"] == watch["id"]
    assert "import.completed" in (await cli("events", "ls")).out
    replay = (await cli("events", "replay", event["id"], "--json")).json()
    assert len(replay["delivery_ids"]) == 1

    async def replayed() -> bool:
        return len(cli.receiver.for_path("cli")) >= 2

    await wait_until(replayed, 20, "the replay")
    assert cli.receiver.for_path("cli")[1].webhook_id == first.webhook_id

    async def both_recorded() -> bool:
        page = (await cli("deliveries", "ls", "--subscription", sub["id"], "--json")).json()
        return [d["status"] for d in page["items"]] == ["succeeded", "succeeded"]

    await wait_until(both_recorded, 20, "both deliveries recorded", step_s=0.2)
    page = (await cli("deliveries", "ls", "--status", "succeeded", "--json")).json()
    one = page["items"][0]["id"]
    assert (await cli("deliveries", "show", one, "--json")).json()["attempts"][0]["status"] == 200
    refused = await cli("deliveries", "retry", one)
    assert refused.code == 1 and "already succeeded" in refused.err and "replay" in refused.err

    ping = (await cli("sub", "test", sub["id"], "--json")).json()

    async def pinged() -> bool:
        return any(r.webhook_id == ping["event_id"] for r in cli.receiver.for_path("cli"))

    await wait_until(pinged, 20, "the ping")
    rotated = (await cli("sub", "rotate", sub["id"], "--json")).json()
    assert rotated["secret"] != sub["secret"]
    assert (await cli("sub", "disable", sub["id"], "--json")).json()["enabled"] is False
    disabled_ping = await cli("sub", "test", sub["id"])
    assert disabled_ping.code == 1 and "subscription_disabled" in disabled_ping.err
    assert (await cli("sub", "enable", sub["id"], "--json")).json()["enabled"] is True

    status = (await cli("status", "--json")).json()
    assert status["watches"]["total"] == 1 and status["watches"]["finished"] == 1
    assert set(status["sources"]) == {"fs", "td"} and status["subscriptions"]["enabled"] == 1
    assert "deliveries_due" in status["queues"]
    human_status = await cli("status")
    assert human_status.code == 0 and "watches" in human_status.out and "fs" in human_status.out

    assert (await cli("watch", "rm", watch["id"])).code == 0
    gone = await cli("watch", "show", watch["id"])
    assert gone.code == 1 and "watch_not_found" in gone.err
    assert (await cli("sub", "rm", sub["id"], "--json")).json()["deleted"] is True


async def test_verify_a_received_webhook(cli: Cli) -> None:
    """`bridge verify` accepts what the bridge sent and refuses a changed body or secret."""
    sub = (await cli("sub", "add", cli.receiver.url("v"), "--json")).json()
    cli.receiver.secrets["v"] = sub["secret"]
    await cli("sub", "test", sub["id"])

    async def arrived() -> bool:
        return bool(cli.receiver.for_path("v"))

    await wait_until(arrived, 20, "the ping")
    [got] = cli.receiver.for_path("v")
    (cli.cwd / "body.json").write_bytes(got.raw)
    (cli.cwd / "headers.txt").write_text("".join(f"{k}: {v}\n" for k, v in got.headers.items()))
    (cli.cwd / "headers.json").write_text(json.dumps(got.headers))
    for headers in ("headers.txt", "headers.json"):
        ok = await cli(
            "verify", "--secret", sub["secret"], "--body", "body.json", "--headers", headers
        )
        assert ok.code == 0 and ok.out.startswith("valid:"), ok.out + ok.err
    by_flags = await cli(
        "verify", "--secret", sub["secret"], "--body", "body.json",
        "--header", f"webhook-id: {got.headers['webhook-id']}",
        "--header", f"webhook-timestamp: {got.headers['webhook-timestamp']}",
        "--header", f"webhook-signature: {got.headers['webhook-signature']}",
    )  # fmt: skip
    assert by_flags.code == 0
    (cli.cwd / "tampered.json").write_bytes(got.raw.replace(b"ping", b"pong"))
    bad = await cli(
        "verify", "--secret", sub["secret"], "--body", "tampered.json", "--headers", "headers.txt"
    )
    assert bad.code == 1 and bad.out.startswith("invalid:")
    other = "whsec_" + "A" * 43 + "="
    wrong = await cli(
        "verify", "--secret", other, "--body", "body.json", "--headers", "headers.txt"
    )
    assert wrong.code == 1 and "no signature matches" in wrong.out
    missing = await cli("verify", "--secret", sub["secret"], "--body", "nope.json")
    assert missing.code == 1 and "cannot read" in missing.err


async def test_errors_and_exit_codes(cli: Cli, tmp_path: Path) -> None:
    """Usage errors exit 2, API refusals and unreachable bridges exit 1 with the reason;
    config check masks secrets."""
    assert (await cli("watch")).code == 2
    assert (await cli("sub", "add")).code == 2
    unauthorized = await cli("status", token="nope")
    assert unauthorized.code == 1 and "unauthorized" in unauthorized.err
    assert (await cli("status", "--token", TOKEN, token=None)).code == 0
    bad = await cli("watch", "add", "nosuch", "job", "--json")
    assert bad.code == 1 and "unknown_source" in bad.err and "configured sources" in bad.err
    down = await cli("status", "--api", "http://127.0.0.1:1")
    assert down.code == 1 and "cannot reach the bridge" in down.err
    for header in ("novalue", "X-Team=data"):
        bad_header = await cli("sub", "add", cli.receiver.url("x"), "--header", header)
        assert bad_header.code == 1 and "'Name: value'" in bad_header.err
        (tmp_path / "b.json").write_text("{}")
        args = ("--secret", "whsec_" + "A" * 43 + "=", "--body", str(tmp_path / "b.json"))
        bad_verify = await cli("verify", *args, "--header", header)  # one syntax there too
        assert bad_verify.code == 1 and "'Name: value'" in bad_verify.err
    types = await cli("events", "types")  # the last column is never cut
    assert "…" not in types.out and "import.completed_with_errors" in types.out
    version = await cli("--version")
    assert version.code == 0 and version.out.startswith("import-bridge ")
    bad_limit = await cli("watch", "ls", "--limit", "9999")
    assert bad_limit.code == 1 and "from 1 to 500" in bad_limit.err

    cfg = tmp_path / "check.toml"
    cfg.write_text('[sources.fs]\nprovider = "fullstory"\napi_key = "very-secret-key"\n')
    checked = await cli("config", "check", str(cfg))
    assert checked.code == 0 and "very-secret-key" not in checked.out
    assert json.loads(checked.out)["sources"]["fs"]["api_key"] == "**********"
    cfg.write_text("[poll]\nmin_interval = -1\n")
    broken = await cli("config", "check", str(cfg))
    assert broken.code == 1 and "poll.min_interval" in broken.err


async def test_the_secret_is_shown_whole_and_verifies(cli: Cli) -> None:
    """In table mode `sub add` and `sub rotate` print the whole secret, once; the
    printed secret verifies the deliveries that follow; lists page with --limit/--all."""

    def secret_in(text: str) -> str:
        [line] = [line for line in text.splitlines() if line.startswith("secret")]
        value = line.split()[-1]
        assert value.startswith("whsec_") and "…" not in value
        return value

    added = await cli("sub", "add", cli.receiver.url("table"))
    assert added.code == 0, added.err
    cli.receiver.secrets["table"] = secret_in(added.out)
    sub_id = next(line.split()[-1] for line in added.out.splitlines() if line.startswith("id "))
    await cli("sub", "test", sub_id)

    async def pinged(n: int) -> bool:
        return len(cli.receiver.for_path("table")) >= n

    await wait_until(lambda: pinged(1), 20, "the ping")
    rotated = await cli("sub", "rotate", sub_id)
    assert rotated.code == 0, rotated.err
    cli.receiver.secrets["table"] = secret_in(rotated.out)
    await cli("sub", "test", sub_id)
    await wait_until(lambda: pinged(2), 20, "the second ping")
    assert all(r.verified for r in cli.receiver.for_path("table"))

    for i in range(3):
        await cli("sub", "add", cli.receiver.url(f"page{i}"), "--json")
    first = (await cli("sub", "ls", "--limit", "2", "--json")).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    every = (await cli("sub", "ls", "--limit", "2", "--all", "--json")).json()
    ids = [s["id"] for s in every["items"]]
    assert len(ids) == len(set(ids)) >= 4


async def test_a_closed_pipe_is_no_error(cli: Cli) -> None:
    """`import-bridge status | head -0`: the reader went away; exit 0, no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "BRIDGE_API_URL": cli.api, "BRIDGE_API_TOKEN": TOKEN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "status",
        stdout=write_end, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    os.close(write_end)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0 and b"Traceback" not in err and err == b"", err


async def test_a_proxy_in_the_environment_does_not_stand_between_cli_and_bridge(
    cli: Cli,
) -> None:
    """With HTTP_PROXY pointing nowhere (as in a container that sets it for upstream
    traffic), `probe` and the admin commands still reach the bridge on this host."""
    env = {
        **os.environ,
        "BRIDGE_API_URL": cli.api,
        "BRIDGE_API_TOKEN": TOKEN,
        "http_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    for args in (["probe", "--url", f"{cli.api}/readyz"], ["status"]):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, (args, err)


async def test_metadata_travels_with_the_job_and_picks_subscribers(cli: Cli) -> None:
    """A watch registered with metadata: its terminal webhook carries it, verified; a
    subscription filtered on tenant acme gets it, one filtered on globex does not."""
    subs = {}
    for path, tenant in (("acme", "acme"), ("globex", "globex")):
        subs[path] = (
            await cli("sub", "add", cli.receiver.url(path), "--meta", f"tenant={tenant}", "--json")
        ).json()
        cli.receiver.secrets[path] = subs[path]["secret"]
        assert subs[path]["metadata"] == {"tenant": tenant}
    cli.sim.add_job(JobSpec(provider="fullstory", id="meta-job", duration=0.2))
    watch = (
        await cli("watch", "add", "fs", "meta-job", "--meta", "tenant=acme", "--meta", "run=r-17",
                  "--json")
    ).json()  # fmt: skip
    assert watch["metadata"] == {"tenant": "acme", "run": "r-17"}
    again = (await cli("watch", "add", "fs", "meta-job", "--meta", "tenant=x", "--json")).json()
    assert again["metadata"] == watch["metadata"]  # the first registration's

    async def delivered() -> bool:
        return len(cli.receiver.for_path("acme")) >= 1

    await wait_until(delivered, 20, "the acme webhook")
    [got] = cli.receiver.for_path("acme")
    assert got.verified and got.body["type"] == "import.completed"
    assert got.body["data"]["metadata"] == {"tenant": "acme", "run": "r-17"}
    shown = (await cli("events", "show", got.webhook_id, "--json")).json()
    assert shown["data"]["metadata"] == {"tenant": "acme", "run": "r-17"}

    async def recorded() -> bool:  # the delivery list knows both subscriptions by now
        page = (await cli("deliveries", "ls", "--json")).json()
        return any(d["subscription_id"] == subs["acme"]["id"] for d in page["items"])

    await wait_until(recorded, 20, "the delivery recorded")
    page = (await cli("deliveries", "ls", "--json")).json()
    assert all(d["subscription_id"] != subs["globex"]["id"] for d in page["items"])
    assert cli.receiver.for_path("globex") == []
    bad = await cli("watch", "add", "fs", "other", "--meta", "bad key=v")
    assert bad.code == 1 and "metadata" in bad.err


async def test_a_pipeline_step_waits_for_the_job_and_exits_by_its_outcome(cli: Cli) -> None:
    """`watch add … --wait` and `wait ID` block on the watch's long poll until the job
    ends, print its event, and exit 0 completed, 3 completed with errors, 4 failed, 6
    when the timeout passes first."""
    jobs = {
        "w-ok": ("fullstory", "COMPLETED", 0),
        "w-partial": ("talkdesk", "COMPLETED_WITH_ERRORS", 2),
        "w-bad": ("fullstory", "FAILED", 0),
    }
    for job_id, (provider, status, failed) in jobs.items():
        cli.sim.add_job(
            JobSpec(provider=provider, id=job_id, duration=0.3, final_status=status, failed=failed)
        )
    done = await cli("watch", "add", "fs", "w-ok", "--wait", "--timeout", "30", "--json")
    assert done.code == 0, done.err
    assert done.json()["type"] == "import.completed"  # the event, not the watch
    partial = await cli("watch", "add", "td", "w-partial", "--wait", "--timeout", "30")
    assert partial.code == 3 and "import.completed_with_errors" in partial.out
    failed = await cli("watch", "add", "fs", "w-bad", "--wait", "--timeout", "30")
    assert failed.code == 4 and "import.failed" in failed.out
    cli.sim.add_job(JobSpec(provider="fullstory", id="w-long", duration=600))
    watch = (await cli("watch", "add", "fs", "w-long", "--json")).json()
    timed_out = await cli("wait", watch["id"], "--timeout", "0.5")
    assert timed_out.code == 6 and "still watching" in timed_out.err
    ended = await cli("wait", "fs/w-ok")  # by its job; ended already: at once
    assert ended.code == 0 and "import.completed" in ended.out
    unknown = await cli("wait", "w_nope")
    assert unknown.code == 1 and "watch_not_found" in unknown.err
    for given in ("fs/", "/w-ok"):  # an empty part never means "any job"
        empty = await cli("wait", given, "--timeout", "1")
        assert empty.code == 1 and "expected SOURCE/JOB_ID" in empty.err
    assert (await cli("wait", "fs/w-ok", "--timeout", "nan")).code == 1
    assert (await cli("watch", "add", "fs", "x", "--timeout", "5")).code == 1


async def test_an_ed25519_subscription_points_to_its_public_key(cli: Cli) -> None:
    """A v1a subscription's private key is never needed elsewhere: the CLI names the
    public key receivers verify with, and does not ask to keep the secret."""
    made = await cli("sub", "add", cli.receiver.url("ed"), "--signature", "v1a")
    assert made.code == 0, made.err
    assert "Receivers verify with the public key: whpk_" in made.out
    assert "Keep the secret" not in made.out
