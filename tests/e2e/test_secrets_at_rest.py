"""Secrets sealed at rest, end to end: a real redis-server with its append-only file,
bridges restarted through a key rotation, receivers that verify every signature."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from bridge.app import Bridge, StartupError
from bridge.cli.main import main
from bridge.sealing import key_id, new_key, parse_key
from bridge.settings import load_settings
from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import auth, start_sim_and_receiver, subscribe, wait_until, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

DELIVERY = """
[delivery]
allow_private_targets = true
retry_schedule = [0.2]
"""
WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LWJ5dGVzLWZvci10aGUtcmVjZWl2ZXI="
HEADER_VALUE = "hv-custom-header-credential-42"


def aof_bytes(data_dir: Path) -> bytes:
    """Every byte of the append-only file(s) (one file on 6.2, a directory on 7)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*.aof*")) if p.is_file())


async def test_no_secret_is_in_clear_in_redis_or_in_any_answer(tmp_path: Path, prefix: str) -> None:
    """The webhook secret, a custom header value and the Talkdesk access token never
    reach the append-only file in clear; nor an API answer, /metrics or the status."""
    redis = EmbeddedRedis(tmp_path / "redis", persist=True)
    redis.start()
    sim, server, receiver = await start_sim_and_receiver()
    key = new_key()
    cfg = write_config(tmp_path / "b.toml", server, redis_url=redis.url, prefix=prefix,
                       extra=DELIVERY)  # fmt: skip
    cfg.write_text(f'secrets_keys = ["{key}"]\n' + cfg.read_text())
    bridge = Bridge(load_settings(cfg), redis_url=redis.url)
    await bridge.start()
    api = f"http://127.0.0.1:{bridge.api_port}"
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            sub = await subscribe(http, api, receiver, "hooks", secret=WEBHOOK_SECRET,
                                  headers={"X-Api-Key": HEADER_VALUE})  # fmt: skip
            sim.add_job(JobSpec(provider="talkdesk", id="sealed-job", duration=0.2))
            await http.post(f"{api}/v1/watches", json={"source": "td", "job_id": "sealed-job"})

            async def delivered() -> bool:
                return any(r.verified for r in receiver.for_path("hooks"))

            await wait_until(delivered, 20, "the event, verified with the secret")
            assert receiver.for_path("hooks")[0].headers["x-api-key"] == HEADER_VALUE
            tokens = list(sim.state.tokens)  # the Talkdesk access tokens it issued
            assert tokens
            answers = [
                await (await http.get(f"{api}{path}")).text()
                for path in ("/v1/subscriptions", f"/v1/subscriptions/{sub['id']}",
                             "/v1/status", "/metrics")
            ]  # fmt: skip

            async def written() -> bool:  # the subscription's record reached the file
                return sub["id"].encode() in aof_bytes(redis.data_dir)

            await wait_until(written, 10, "the append-only file")
    finally:
        await bridge.stop(grace_s=1)
        await receiver.close()
        await server.close()
        redis.stop()
    aof = aof_bytes(redis.data_dir)
    assert b"sealed:1:" + key_id(parse_key(key)).encode() in aof
    secrets = [WEBHOOK_SECRET, HEADER_VALUE, WEBHOOK_SECRET.removeprefix("whsec_")]
    secrets += tokens
    for secret in secrets:
        assert secret.encode() not in aof, "a secret in clear in the append-only file"
        assert all(secret not in answer for answer in answers)


async def test_keys_rotate_with_restarts_and_a_wrong_key_stops_the_start(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> None:
    """One key; then the new one first and the old second; `secrets rotate`; then the
    new one alone: every event still verifies. A key that opens nothing stored is a
    start-up error naming the subscription and the key."""
    sim, server, receiver = await start_sim_and_receiver()
    old, new = new_key(), new_key()
    cfg = write_config(tmp_path / "b.toml", server, redis_url=redis_server.url, prefix=prefix,
                       extra=DELIVERY)  # fmt: skip
    base = cfg.read_text()

    def with_keys(*keys: str) -> Path:
        listed = ", ".join(f'"{k}"' for k in keys)
        cfg.write_text(f"secrets_keys = [{listed}]\n" + base)
        return cfg

    async def one_job(job: str) -> None:
        bridge = Bridge(load_settings(cfg), redis_url=redis_server.url)
        await bridge.start()
        api = f"http://127.0.0.1:{bridge.api_port}"
        try:
            async with aiohttp.ClientSession(headers=auth()) as http:
                if not receiver.secrets:
                    await subscribe(http, api, receiver, "hooks")
                sim.add_job(JobSpec(provider="talkdesk", id=job, duration=0.1))
                await http.post(f"{api}/v1/watches", json={"source": "td", "job_id": job})

                async def verified() -> bool:
                    return any(r.verified and r.body["data"]["job_id"] == job
                               for r in receiver.for_path("hooks"))  # fmt: skip

                await wait_until(verified, 20, f"{job}'s event, verified")
        finally:
            await bridge.stop(grace_s=1)

    try:
        with_keys(old)
        await one_job("before")
        with_keys(new, old)
        await one_job("both")
        assert await asyncio.to_thread(main, ["secrets", "rotate", "--config", str(cfg)]) == 0
        from bridge.store.connection import connect

        client = connect(redis_server.url)
        stored = [str(v) for v in await client.mget(await client.keys(f"{{{prefix}}}:sub:*"))]
        await client.aclose()
        assert stored and all(f"sealed:1:{key_id(parse_key(new))}:" in v for v in stored)
        assert not any(f"sealed:1:{key_id(parse_key(old))}:" in v for v in stored)
        with_keys(new)
        await one_job("after")
        with_keys(new_key())
        stranger = Bridge(load_settings(cfg), redis_url=redis_server.url)
        with pytest.raises(StartupError, match=f"subscription sub_.*key {key_id(parse_key(new))}"):
            await stranger.start()
        await stranger.stop(grace_s=0)
    finally:
        await receiver.close()
        await server.close()
