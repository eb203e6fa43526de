"""The ticker: stopping it while a job is running is quiet."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bridge.poll.scheduler import Ticker


async def test_stopping_during_a_job_logs_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """APScheduler cancels a running job at shutdown; that is not logged as its failure."""
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.Event().wait()

    ticker = Ticker()
    ticker.every(0.01, slow, "slow")
    caplog.set_level(logging.DEBUG, logger="apscheduler")
    ticker.start()
    await asyncio.wait_for(started.wait(), 5)
    ticker.stop()
    for _ in range(5):
        await asyncio.sleep(0)
    assert "raised an exception" not in caplog.text
    assert "Traceback" not in caplog.text
