"""The watch document round-trips, and reads what older versions wrote."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.model import Counts, Outcome, Watch, WatchState
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


texts = st.one_of(st.none(), st.text(max_size=8))
times = st.one_of(st.none(), st.floats(0, 2e9, allow_nan=False))
small = st.integers(0, 3)
counts = st.one_of(st.none(), st.integers(0, 5))


@given(
    status=texts,
    outcome=st.one_of(st.none(), st.sampled_from(list(Outcome))),
    total=counts,
    succeeded=counts,
    polls=small,
    errors=small,
    interval=st.sampled_from([0.0, 1.5]),
    polled=times,
    terminal=times,
    error=texts,
    reason=st.one_of(st.none(), st.sampled_from(["age", "eta"])),
    snapshot=st.one_of(st.none(), st.just({"state": "RUNNING"}), st.just({})),
    discovered=st.booleans(),
)
def test_every_watch_round_trips_defaults_left_out(
    status: str | None,
    outcome: Outcome | None,
    total: int | None,
    succeeded: int | None,
    polls: int,
    errors: int,
    interval: float,
    polled: float | None,
    terminal: float | None,
    error: str | None,
    reason: str | None,
    snapshot: dict[str, Any] | None,
    discovered: bool,
) -> None:
    """Whatever a watch holds comes back as it was (empty strings, zero counts and empty
    snapshots included), and a field at its reader's default is not written."""
    w = watch(status=status, outcome=outcome, counts=Counts(total, succeeded, None),
              polls=polls, errors=errors, interval_s=interval, last_polled_at=polled,
              terminal_at=terminal, last_error=error, poll_reason=reason, snapshot=snapshot,
              discovered=discovered)  # fmt: skip
    doc = codec.watch_to_doc(w)
    assert codec.watch_from_doc(doc, 0) == w
    written = json.loads(doc)
    assert not any(k in written and written[k] == v for k, v in codec.DEFAULTS.items())


def test_a_new_watch_document_is_small() -> None:
    assert len(codec.watch_to_doc(watch(poll_reason="age"))) < 150


@settings(max_examples=200, deadline=None)
@given(
    entries=st.lists(
        st.tuples(
            st.one_of(st.floats(0, 2e9), st.integers(0, 2**31)),
            st.text(max_size=8),
            st.text(max_size=8),
        ),
        max_size=25,
    )
)
def test_a_timeline_reads_back_as_floats_and_texts(entries: list[tuple[Any, str, str]]) -> None:
    """Times written as integers (or by hand) still read back as floats; the fast path
    for documents this version wrote gives the same tuples."""
    doc = json.dumps({**json.loads(codec.watch_to_doc(watch())), "timeline": entries})
    timeline = codec.watch_from_doc(doc, 0).timeline
    assert timeline == tuple((float(t), a, b) for t, a, b in entries)
    assert all(type(t[0]) is float for t in timeline)
