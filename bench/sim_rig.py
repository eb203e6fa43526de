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
