"""The C command packer says byte for byte what redis-py's own would."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import DataError

from bridge.store.connection import with_fast_packing

PLAIN = aioredis.Connection()
FAST = with_fast_packing(aioredis.Connection)()

args = st.lists(
    st.one_of(
        st.text(),
        st.binary(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    max_size=12,
)


@given(st.sampled_from(["EVALSHA", "SET", "SCRIPT LOAD", "XADD"]), args)
def test_same_bytes_as_redis_py(command: str, rest: list[object]) -> None:
    """Any command and arguments pack to the same bytes (multi-word names split)."""
    assert b"".join(FAST.pack_command(command, *rest)) == b"".join(
        PLAIN.pack_command(command, *rest)
    )


@pytest.mark.parametrize("bad", [None, True])
def test_refuses_what_redis_py_refuses(bad: object) -> None:
    """None and booleans are errors, not silently packed values."""
    with pytest.raises(DataError):
        PLAIN.pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        FAST.pack_command("SET", "k", bad)


def test_wrapping_is_idempotent() -> None:
    """Wrapping a wrapped class changes nothing."""
    cls = with_fast_packing(aioredis.Connection)
    assert with_fast_packing(cls) is cls
