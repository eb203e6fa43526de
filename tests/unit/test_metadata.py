"""Metadata on watches: its bounds, its match against a subscription's filter, and how
it is kept and shown (the API over a real loopback socket, on fakeredis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import metadata
from bridge.model import Subscription
from tests.unit.helpers import AUTH

keys = st.from_regex(r"[A-Za-z0-9_.\-]{1,8}", fullmatch=True)
values = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=6)
maps = st.dictionaries(keys, values, max_size=5)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({f"k{i}": "v" for i in range(17)}, "at most 16 pairs"),
        ({"bad key": "v"}, "letters, digits"),
        ({"": "v"}, "letters, digits"),
        ({"k" * 65: "v"}, "letters, digits"),
        ({"k": 5}, "must be a string"),
        ({"k": "x" * 257}, "at most 256 characters"),
        ({"k": "line\nbreak"}, "control"),
        ({f"k{i}": "x" * 200 for i in range(6)}, "1024 bytes"),
        (["k", "v"], "an object of strings"),
    ],
)
def test_metadata_beyond_its_bounds_is_refused_with_the_reason(value: Any, why: str) -> None:
    found = metadata.problems(value)
    assert found and any(why in p for p in found), found


@given(have=maps, wanted=maps)
def test_a_subscription_takes_the_watches_whose_metadata_holds_its_pairs(
    have: dict[str, str], wanted: dict[str, str]
) -> None:
    """Every pair of the filter, with the same value; no filter takes everything; an
    event without metadata meets no filter."""
    assert not metadata.problems(have)
    sub = Subscription(id="sub_x", url="https://x", secrets=(), metadata=tuple(wanted.items()))
    expected = all(k in have and have[k] == v for k, v in wanted.items())
    assert sub.matches("import.completed", "fs", have) is expected
    assert sub.matches("import.completed", "fs", None) is (not wanted)
    every = Subscription(id="sub_y", url="https://y", secrets=(), event_types=("*",),
                         metadata=tuple(wanted.items()))  # fmt: skip
    assert every.matches("source.unhealthy", "fs", None)  # about no watch: not filtered
    assert every.matches("import.failed", "fs", have) is expected
    assert metadata.holds({**have, **wanted}, wanted)


def test_too_many_pairs_is_one_short_answer() -> None:
    """However large the refused map, its answer is one line (never bigger than it)."""
    huge = {f"bad key {i}": "x" * 300 for i in range(5000)}
    assert metadata.problems(huge) == ["at most 16 pairs (5000 given)"]


async def test_the_api_keeps_shows_and_bounds_metadata(api) -> None:  # type: ignore[no-untyped-def]
    """Registered with the watch (single and batch), shown in it, kept from the first
    registration; 422 naming `metadata` beyond the bounds, the batch item alone."""
    client, _, _ = api
    body = {"source": "fs", "job_id": "m1", "metadata": {"tenant": "acme", "run": "r-17"}}
    created = await (await client.post("/v1/watches", json=body, headers=AUTH)).json()
    assert created["metadata"] == {"tenant": "acme", "run": "r-17"}
    again = {**body, "metadata": {"tenant": "other"}}
    resp = await client.post("/v1/watches", json=again, headers=AUTH)
    assert resp.status == 200 and (await resp.json())["metadata"] == created["metadata"]
    got = await (await client.get(f"/v1/watches/{created['id']}", headers=AUTH)).json()
    assert got["metadata"] == created["metadata"]
    plain = await (
        await client.post("/v1/watches", json={"source": "fs", "job_id": "m0"}, headers=AUTH)
    ).json()
    assert plain["metadata"] == {}
    bad = await client.post(
        "/v1/watches", json={**body, "job_id": "m2", "metadata": {"k": "x" * 300}}, headers=AUTH
    )
    assert bad.status == 422 and (await bad.json())["fields"][0]["name"] == "metadata"
    items = [
        {"source": "fs", "job_id": "b1", "metadata": {"run": "r-18"}},
        {"source": "fs", "job_id": "b2", "metadata": {"no good": "x"}},
    ]
    answers = (
        await (await client.post("/v1/watches/batch", json={"items": items}, headers=AUTH)).json()
    )["items"]
    assert [a["status"] for a in answers] == [201, 422]
    first = await (await client.get(f"/v1/watches/{answers[0]['id']}", headers=AUTH)).json()
    assert first["metadata"] == {"run": "r-18"}


async def test_a_subscription_keeps_and_shows_its_metadata_filter(api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    body = {"url": "http://127.0.0.1:9/a", "metadata": {"tenant": "acme"}}
    resp = await client.post("/v1/subscriptions", json=body, headers=AUTH)
    sub = await resp.json()
    assert resp.status == 201 and sub["metadata"] == {"tenant": "acme"}
    patched = await client.patch(
        f"/v1/subscriptions/{sub['id']}", json={"metadata": {"tenant": "globex"}}, headers=AUTH
    )
    assert (await patched.json())["metadata"] == {"tenant": "globex"}
    bad = await client.post(
        "/v1/subscriptions", json={**body, "metadata": {"a b": "c"}}, headers=AUTH
    )
    assert bad.status == 422 and (await bad.json())["fields"][0]["name"] == "metadata"
