"""Provider adapters: status mapping, parsing, auth headers and error classification."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import (
    AuthError,
    NotFoundError,
    RateLimitedError,
    TransientUpstreamError,
)
from bridge.model import Outcome
from bridge.providers import fullstory, oauth2, talkdesk
from bridge.providers.base import classify, decode_json
from bridge.providers.fullstory import FullStoryProvider
from bridge.providers.http import HttpAnswer

FS_EXPECTED = {"PROCESSING": None, "COMPLETED": Outcome.COMPLETED, "FAILED": Outcome.FAILED}
TD_EXPECTED = {
    "QUEUED": None,
    "IN_PROGRESS": None,
    "COMPLETED": Outcome.COMPLETED,
    "COMPLETED_WITH_ERRORS": Outcome.COMPLETED_WITH_ERRORS,
    "FAILED": Outcome.FAILED,
    "CANCELED": Outcome.CANCELED,
}


@pytest.mark.parametrize(("status", "outcome"), FS_EXPECTED.items())
def test_fullstory_status_map(status: str, outcome: Outcome | None) -> None:
    """FullStory statuses map to the outcomes of DESIGN §2."""
    assert fullstory.outcome_for(status) is outcome


@pytest.mark.parametrize(("status", "outcome"), TD_EXPECTED.items())
def test_talkdesk_status_map(status: str, outcome: Outcome | None) -> None:
    """Talkdesk statuses map to the outcomes of DESIGN §2."""
    assert talkdesk.outcome_for(status) is outcome


@given(st.text(max_size=30))
def test_unknown_status_is_not_terminal(status: str) -> None:
    """A status the bridge does not know keeps the job running rather than inventing an outcome."""
    if status not in FS_EXPECTED:
        assert fullstory.outcome_for(status) is None
    if status not in TD_EXPECTED:
        assert talkdesk.outcome_for(status) is None


def test_fullstory_parses_the_seed_example() -> None:
    """The seed page's example body becomes a FAILED snapshot with counts."""
    body = {
        "imports": 42,
        "errors": 2,
        "job": {
            "id": "abd123=",
            "status": "FAILED",
            "created": "2019-04-18T14:36:11.123Z",
            "finished": "2019-04-18T15:36:11.123Z",
        },
        "extra": "ignored",
    }
    snap = FullStoryProvider("k").parse(body)
    assert snap.outcome is Outcome.FAILED and snap.status == "FAILED"
    assert (snap.counts.succeeded, snap.counts.failed) == (42, 2)
    assert snap.finished_at == "2019-04-18T15:36:11.123Z"


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "x",
        {},
        {"job": {}},
        {"job": {"status": 5}},
        {"imports": "many", "job": {"status": "COMPLETED"}},
    ],
)
def test_malformed_bodies_are_transient(body: Any) -> None:
    """A body of the wrong shape is a retryable error, never a crash."""
    with pytest.raises(TransientUpstreamError, match="malformed"):
        FullStoryProvider("k").parse(body)


def test_non_json_is_transient() -> None:
    """An HTML error page is a retryable error."""
    with pytest.raises(TransientUpstreamError, match="not JSON"):
        decode_json(b"<html>502</html>")


async def test_fullstory_auth_and_hosts() -> None:
    """The key is sent as-is after Basic; eu1 keys go to the EU host unless overridden."""
    p = FullStoryProvider("na1.secret")
    assert (await p.auth_headers())["Authorization"] == "Basic na1.secret"
    assert p.job_url("users", "a/b=") == "https://api.fullstory.com/v2/users/batch/a%2Fb%3D"
    assert FullStoryProvider("eu1.x").base_url == "https://api.eu1.fullstory.com"
    assert FullStoryProvider("eu1.x", "http://127.0.0.1:1/").base_url == "http://127.0.0.1:1"


def test_classify_statuses() -> None:
    """404, 429 (both Retry-After forms), 401/403 and 5xx map to their error types."""
    now = 1_800_000_000.0
    assert isinstance(classify(HttpAnswer(404, b"{}"), now), NotFoundError)
    limited = classify(HttpAnswer(429, b"", {"Retry-After": "7"}), now)
    assert isinstance(limited, RateLimitedError) and limited.retry_after_s == 7
    dated = classify(
        HttpAnswer(429, b"", {"retry-after": "Fri, 15 Jan 2027 08:00:10 GMT"}), 1_800_000_000.0
    )
    assert isinstance(dated, RateLimitedError)
    no_header = classify(HttpAnswer(429, b""), now)
    assert isinstance(no_header, RateLimitedError) and no_header.retry_after_s == 30
    huge = classify(HttpAnswer(429, b"", {"Retry-After": "999999"}), now)
    assert isinstance(huge, RateLimitedError) and huge.retry_after_s == 3600
    refused = classify(HttpAnswer(401, b"{}"), now)
    assert isinstance(refused, AuthError) and refused.credentials
    forbidden = classify(HttpAnswer(403, b"{}"), now)
    assert isinstance(forbidden, AuthError) and not forbidden.credentials  # maybe one job


def test_a_403_that_is_a_rate_limit() -> None:
    """A 403 saying when to come back (Retry-After) or that no requests are left
    (X-RateLimit-Remaining: 0, until X-RateLimit-Reset, as GitHub sends) pauses the
    source like a 429 instead of counting as refused credentials."""
    now = 1_700_000_000.0
    after = classify(HttpAnswer(403, b"{}", {"Retry-After": "60"}), now)
    assert isinstance(after, RateLimitedError) and after.retry_after_s == 60
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(now) + 120)}
    reset = classify(HttpAnswer(403, b"{}", spent), now)
    assert isinstance(reset, RateLimitedError) and reset.retry_after_s == 120
    unreadable = classify(HttpAnswer(403, b"{}", {"X-RateLimit-Remaining": "0"}), now)
    assert isinstance(unreadable, RateLimitedError) and unreadable.retry_after_s == 30
    delta = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "45"}  # seconds from now
    assert classify(HttpAnswer(403, b"{}", delta), now).retry_after_s == 45  # type: ignore[attr-defined]
    past = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(now) - 5)}
    assert classify(HttpAnswer(403, b"{}", past), now).retry_after_s == 30  # type: ignore[attr-defined]
    left = classify(HttpAnswer(403, b"{}", {"X-RateLimit-Remaining": "12"}), now)
    assert isinstance(left, AuthError)
    err = classify(HttpAnswer(500, b'{"message": "Server error", "code": "server_error"}'), now)
    assert isinstance(err, TransientUpstreamError) and "server_error" in str(err)


def test_token_ttl_refreshes_early() -> None:
    """Tokens are kept until shortly before they expire: 10 %, at most a minute early."""
    assert oauth2.token_ttl(3600) == 3540
    assert oauth2.token_ttl(100) == 90
    assert oauth2.token_ttl(0.5) == 1.0
    assert oauth2.token_ttl(float("inf")) == oauth2.MAX_TOKEN_TTL_S  # kept a day at most
    assert oauth2.token_ttl(float("nan")) == 1.0
    assert oauth2.token_ttl(10**9) == oauth2.MAX_TOKEN_TTL_S


def test_an_errors_sample_is_bounded() -> None:
    """At most SAMPLE_ITEMS items and about SAMPLE_BYTES of them; the total and whether it
    was cut are said; odd bodies give an empty sample, never an error."""
    big = {"results": [{"message": "x" * 2000, "i": i} for i in range(50)], "total_records": 50}
    sample = fullstory.errors_sample(big)
    assert len(sample["items"]) <= fullstory.SAMPLE_ITEMS
    assert sum(len(str(i)) for i in sample["items"]) <= fullstory.SAMPLE_BYTES + 100
    assert sample["truncated"] is True and sample["total"] == 50
    small = fullstory.errors_sample({"results": [{"code": "c"}], "total_records": 1})
    assert small == {"items": [{"code": "c"}], "total": 1, "truncated": False}
    for odd in ([], "text", {"results": "no"}, {"total_records": True}):
        assert fullstory.errors_sample(odd)["items"] == []


def test_generic_counts_stay_in_range() -> None:
    """Counts the store can hold (0 to 2**63 - 1); huge, negative, superscript or
    fractional ones are no count, never an error."""
    from bridge.providers.generic import MAX_COUNT, _count

    assert _count(5) == 5 and _count("42") == 42 and _count(7.0) == 7
    for odd in (2**64, "18446744073709551616", 1e300, -1, "\u00b2", "1.5", True, None, [1]):
        assert _count(odd) is None, odd
    assert _count(MAX_COUNT) == MAX_COUNT


async def test_an_unusable_access_token_is_refused() -> None:
    """A token with a line break (it would end up in a header) or an empty one is a
    transient error, not a header injection."""
    import fakeredis

    from bridge.clock import FakeClock
    from bridge.errors import TransientUpstreamError
    from bridge.store.redis import RedisStore
    from tests.unit.helpers import ScriptedHttp, ok

    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    http = ScriptedHttp()
    url = "https://id.example.com/oauth/token"
    for bad in ("tok\r\nX-Evil: 1", ""):
        http.queue(url, ok({"access_token": bad, "expires_in": 3600}))
        creds = oauth2.ClientCredentials(
            source=f"s{len(bad)}", token_url=url, client_id="c", client_secret="s", scope=None,
            http=http, tokens=RedisStore(client, "t").sources, clock=FakeClock(),
        )  # fmt: skip
        with pytest.raises(TransientUpstreamError):
            await creds.token()
    await client.aclose()
