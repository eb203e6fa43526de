"""The simulator on a loopback port, for the benchmarks run in-process."""

from __future__ import annotations

from aiohttp import web

from bridge.sim.upstream import Simulator


async def start_simulator() -> tuple[Simulator, web.AppRunner, int]:
    """A simulator serving on 127.0.0.1; its runner (to clean up) and port."""
    sim = Simulator()
    runner = web.AppRunner(sim.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return sim, runner, int(runner.addresses[0][1])


def sim_sources_toml(port: int) -> str:
    """[sources.fs] and [sources.td] against the simulator on `port`, no rate limit."""
    return f"""
[sources.fs]
provider = "fullstory"
api_key = "sim-fullstory-key"
base_url = "http://127.0.0.1:{port}"
rate_limit = 0
[sources.td]
provider = "talkdesk"
account = "acme"
client_id = "sim-client"
client_secret = "sim-secret"
base_url = "http://127.0.0.1:{port}"
token_url = "http://127.0.0.1:{port}/oauth/token"
rate_limit = 0
"""
