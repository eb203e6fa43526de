"""`bridge demo` as a newcomer runs it: a child process that must exit 0 with every
demo job's event printed as verified."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bridge.demo import DEMO_JOBS

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


def test_demo_exits_0_with_every_event_verified(tmp_path: Path) -> None:
    """Five jobs, five verified webhooks, exit 0, and the embedded Redis said so."""
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", "demo", "--data-dir", str(tmp_path), "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verified = [line for line in proc.stdout.splitlines() if line.startswith("✔ verified")]
    assert len(verified) == len(DEMO_JOBS)
    for spec in DEMO_JOBS:
        assert any(f"/{spec.id}" in line for line in verified), spec.id
    assert "NOT verified" not in proc.stdout
    assert "embedded Redis at" in proc.stdout and "set redis_url for production" in proc.stdout
    assert f"all {len(DEMO_JOBS)} jobs notified and verified" in proc.stdout
    words = " ".join(proc.stdout.split())  # as printed, wrapped to the terminal's width
    assert "simulator at http://127.0.0.1:" in words and "/_sim/jobs adds a job" in words
    assert (tmp_path / "demo" / "appendonlydir").exists() or any((tmp_path / "demo").glob("*.aof"))
