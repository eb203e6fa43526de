"""The watch record round-trips, and reads what older versions wrote."""

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
        id=codec.watch_id("td", "users", "j"),
        source="td",
        kind="users",
        job_id="j",
        state=WatchState.WATCHING,
        created_at=1.0,
        next_poll_at=1.0,
    )
    return replace(base, **kw)


def record(w: Watch, doc: str | None = None) -> list[Any]:
    """The hash fields the store writes for w (codec.RECORD_FIELDS), as Redis returns them."""
    if codec.is_legacy(w):
        return [
            str(w.lease),
            w.state.value,
            w.source,
            None,
            None,
            None,
            doc or codec.watch_to_doc(w),
        ]
    doc = doc or codec.watch_to_doc(w)
    return [str(w.lease), w.state.value, w.source, *codec.identity_fields(w), doc]


def round_trip(w: Watch, doc: str | None = None) -> Watch:
    back = codec.watch_from_record(w.id, record(w, doc))
    assert back is not None
    return back


def test_progress_samples_round_trip() -> None:
    """(first seen, last seen, count) samples come back as written."""
    w = watch(progress=((1.0, 3.0, 10), (4.0, 4.0, 20)))
    assert round_trip(w).progress == w.progress


def test_older_progress_documents_are_read() -> None:
    """(time, count) pairs and the single first reading of older versions still load."""
    doc = json.loads(codec.watch_to_doc(watch()))
    doc["progress"] = [[1.0, 10], [4.0, 20]]
    pairs = round_trip(watch(), json.dumps(doc)).progress
    assert pairs == ((1.0, 1.0, 10), (4.0, 4.0, 20))
    doc["progress"] = []
    doc["progress_t0"], doc["progress_done0"] = 2.0, 5
    assert round_trip(watch(), json.dumps(doc)).progress == ((2.0, 2.0, 5),)


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
    legacy=st.booleans(),
    state=st.sampled_from(list(WatchState)),
    next_poll=st.sampled_from(["created", None, 7.5]),
    meta=st.sampled_from([None, {"tenant": "acme", "run": "r-17"}]),
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
    legacy: bool,
    state: WatchState,
    next_poll: str | float | None,
    meta: dict[str, str] | None,
) -> None:
    """Whatever a watch holds comes back as it was (empty strings, zero counts and empty
    snapshots included), and a field at its reader's default is not written; a watch
    registered before 0.3 (a random id of 22 characters) is written whole, as then."""
    w = watch(status=status, outcome=outcome, counts=Counts(total, succeeded, None),
              polls=polls, errors=errors, interval_s=interval, last_polled_at=polled,
              terminal_at=terminal, last_error=error, poll_reason=reason, snapshot=snapshot,
              discovered=discovered, lease=3, state=state,
              next_poll_at=1.0 if next_poll == "created" else next_poll,
              metadata=meta)  # fmt: skip
    if legacy:
        w = replace(w, id="w_" + "ab" * 10)
    doc = codec.watch_to_doc(w)
    assert round_trip(w) == w
    written = json.loads(doc)
    explicit_none = not legacy and state is WatchState.WATCHING and next_poll is None
    assert not any(
        k in written and written[k] == v and not (k == "next_poll_at" and explicit_none)
        for k, v in codec.DEFAULTS.items()
    )
    assert ("job_id" in written) is legacy  # the hash holds it, beside the doc
    if legacy:
        assert codec.watch_from_doc(doc, 3) == w  # as 0.2 wrote and read it


def test_a_new_watch_fits_redis_compact_hash_encoding() -> None:
    """Every value of a watch not yet answered fits hash-max-listpack-value (64 bytes),
    so Redis keeps the hash compact (README, capacity model)."""
    job = "8f14e45f-ceea-467f-a0e6-3a1c7b4e9d21"
    w = watch(id=codec.watch_id("td", "users", job), job_id=job, created_at=1765100000.123,
              next_poll_at=1765100000.123, poll_reason="age")  # fmt: skip
    values = [str(v) for v in record(w) if v is not None]
    assert max(len(v.encode()) for v in values) <= 64, values


def test_a_watch_id_derives_from_its_job() -> None:
    one = codec.watch_id("td", "users", "j")
    assert one == codec.watch_id("td", "users", "j")
    assert one != codec.watch_id("td", "events", "j") != codec.watch_id("t", "dusers", "j")
    assert one.startswith("w_") and len(one) == 22 and not codec.is_legacy(watch())
    assert codec.is_legacy(watch(id="w_" + "0" * 20))  # a random id, as 0.2 gave


def test_a_deleted_or_missing_record_is_no_watch() -> None:
    assert codec.watch_from_record("w_x", [None] * 7) is None
    assert codec.watch_from_record("w_x", ["4", "deleted", None, None, None, None, None]) is None


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
    timeline = round_trip(watch(), doc).timeline
    assert timeline == tuple((float(t), a, b) for t, a, b in entries)
    assert all(type(t[0]) is float for t in timeline)
