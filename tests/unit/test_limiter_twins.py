"""The limiter that runs (Lua, in store/lua/permit.lua) and its specification
(poll/ratelimit.reserve) answer alike: the Lua function runs in an embedded Lua (the
interpreter fakeredis uses) with a dictionary for Redis, on the same clock readings."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from lupa import lua51

from bridge.poll.ratelimit import reserve
from bridge.store import scripts


class LuaLimiter:
    """`reserve` of the scripts, with GET and SET on a dict standing in for Redis."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        runtime = lua51.LuaRuntime(unpack_returned_tuples=True)  # Redis runs Lua 5.1
        runtime.globals().redis = runtime.table(call=self._call)
        self._reserve = runtime.execute(scripts.library("permit") + "\nreturn reserve")

    def _call(self, command: str, key: str, *args: Any) -> Any:
        if command == "GET":
            return self.keys.get(key)
        if command == "SET":
            self.keys[key] = str(args[0])
            return "OK"
        raise AssertionError(f"the limiter asked for {command}")

    def __call__(
        self, now_ms: int, rate: float, burst: int, horizon_ms: int
    ) -> tuple[bool, float, float | None]:
        answer = self._reserve("p:src:gcra", "p:src:paused_until", rate, burst, now_ms, horizon_ms)
        granted, ms = answer[0], answer[1]
        tat = self.keys.get("p:src:gcra")
        return bool(granted), float(ms), None if tat is None else float(tat)


@given(
    rate=st.floats(0.05, 500),
    burst=st.integers(1, 5),
    horizon_ms=st.integers(0, 2000),
    gaps=st.lists(st.integers(0, 400), min_size=1, max_size=150),
)
def test_the_lua_limiter_is_its_specification(
    rate: float, burst: int, horizon_ms: int, gaps: list[int]
) -> None:
    """Same grants, the same delays (refusals in whole ms, rounded up, by both), the
    same theoretical arrival time stored (to the microsecond: stored with tostring's
    14 digits, each slot once lost up to 0.1 ms), over any sequence of claims."""
    burst = max(1, min(burst, int(rate))) if rate >= 1 else 1
    lua, tat, now = LuaLimiter(), None, 1_700_000_000_000
    for gap in gaps:
        now += gap
        spec = reserve(tat, now, rate, burst, horizon_ms)
        granted, ms, stored = lua(now, rate, burst, horizon_ms)
        assert granted == spec.granted, (now, spec)
        assert abs(ms - spec.delay_ms) < 1e-3, (ms, spec)
        if granted:
            assert stored is not None and abs(stored - spec.tat_ms) < 1e-3
        tat = stored  # both go on from the state Redis holds
