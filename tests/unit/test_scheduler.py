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


async def test_a_job_that_outlasts_its_beats_is_skipped_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A job held up (Redis silent) for many beats: each beat meanwhile is a no-op, not a
    "maximum number of running instances" warning every beat; it runs again after."""
    release, again, ten_beats = asyncio.Event(), asyncio.Event(), asyncio.Event()
    runs: list[int] = []

    async def held() -> None:
        runs.append(1)
        if len(runs) == 1:
            await release.wait()
        else:
            again.set()

    class Beats(logging.Handler):
        seen = 0

        def emit(self, record: logging.LogRecord) -> None:
            if "held (trigger" in record.getMessage():  # a beat run, or one skipped
                self.seen += 1
                if self.seen >= 10:
                    ten_beats.set()

    beats = Beats()
    logging.getLogger("apscheduler").addHandler(beats)
    caplog.set_level(logging.DEBUG, logger="apscheduler")
    ticker = Ticker()
    ticker.every(0.01, held, "held")
    ticker.start()
    try:
        await asyncio.wait_for(ten_beats.wait(), 10)  # while the first run is held
        assert len(runs) == 1
        release.set()
        await asyncio.wait_for(again.wait(), 10)
    finally:
        ticker.stop()
        logging.getLogger("apscheduler").removeHandler(beats)
    assert "maximum number of running instances" not in caplog.text
