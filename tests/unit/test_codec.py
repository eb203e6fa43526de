"""The watch document round-trips, and reads what older versions wrote."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from bridge.model import Watch, WatchState
from bridge.store import codec


def watch(**kw: Any) -> Watch:
    base = Watch(
        id="w_1",
        source="td",
        kind="users",
        job_id="j",
        state=WatchState.WATCHING,
        created_at=1.0,
        next_poll_at=1.0,
    )
    return replace(base, **kw)


def test_progress_samples_round_trip() -> None:
    """(first seen, last seen, count) samples come back as written."""
    w = watch(progress=((1.0, 3.0, 10), (4.0, 4.0, 20)))
    assert codec.watch_from_doc(codec.watch_to_doc(w), 0).progress == w.progress


def test_older_progress_documents_are_read() -> None:
    """(time, count) pairs and the single first reading of older versions still load."""
    doc = json.loads(codec.watch_to_doc(watch()))
    doc["progress"] = [[1.0, 10], [4.0, 20]]
    pairs = codec.watch_from_doc(json.dumps(doc), 0).progress
    assert pairs == ((1.0, 1.0, 10), (4.0, 4.0, 20))
    doc["progress"] = []
    doc["progress_t0"], doc["progress_done0"] = 2.0, 5
    assert codec.watch_from_doc(json.dumps(doc), 0).progress == ((2.0, 2.0, 5),)
