"""Signing, retry policy, formats and the SSRF guard: pure parts of delivery."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bridge.delivery import formats, policy, signing
from bridge.delivery.deliverer import deliveries_for
from bridge.delivery.targets import (
    TargetPolicy,
    TargetRefused,
    address_refused,
    check_host,
    check_url,
)
from bridge.event_types import type_matches
from bridge.model import Event, Subscription
from tests.unit.helpers import spec_verify

SCHEDULE = policy.DEFAULT_SCHEDULE_S


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)


@given(json_values, st.integers(0, 2**40))
def test_signatures_verify_with_standardwebhooks(value: object, salt: int) -> None:
    """Any JSON body signed by the bridge verifies with the reference library."""
    import time

    import orjson

    body = orjson.dumps(value)
    secret = signing.new_secret()
    ts = int(time.time())
    headers = signing.webhook_headers([secret], f"evt_{salt}", ts, body)
    Webhook(secret).verify(body, headers)


def test_rotation_signs_with_both_secrets() -> None:
    """During the grace period a receiver holding either secret verifies."""
    import time

    old, new = signing.new_secret(), signing.new_secret()
    body, ts = b'{"type":"ping"}', int(time.time())
    headers = signing.webhook_headers([new, old], "evt_1", ts, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)


@pytest.mark.parametrize("bad", ["secret", "whsec_", "whsec_!!!", "whsec_" + "QUJD"])
def test_invalid_secrets_are_refused(bad: str) -> None:
    """Secrets are whsec_ + base64 of at least 24 bytes."""
    with pytest.raises(signing.InvalidSecret):
        signing.secret_key(bad)


@given(st.integers(1, len(SCHEDULE)), st.floats(0, 1))
def test_retry_delay_is_the_schedule_within_jitter(failures: int, rand: float) -> None:
    """The n-th retry waits schedule[n-1] ± 20 %."""
    delay = policy.retry_delay(failures, SCHEDULE, rand)
    base = SCHEDULE[failures - 1]
    assert delay is not None and base * 0.8 - 1e-9 <= delay <= base * 1.2 + 1e-9


def test_schedule_runs_out_into_dead() -> None:
    """After the last scheduled retry fails the delivery is dead."""
    d = policy.decide(
        status=500,
        failures_before=len(SCHEDULE),
        schedule=SCHEDULE,
        retry_after_s=None,
        retry_after_cap_s=86400,
        rand=0.5,
    )
    assert d.verdict is policy.Verdict.DEAD


@given(st.sampled_from([429, 503]), st.floats(0, 10**6), st.integers(0, len(SCHEDULE) - 1))
def test_retry_after_is_never_undercut(status: int, retry_after: float, failures: int) -> None:
    """A 429/503 Retry-After is honoured: never earlier than asked (up to the cap)."""
    cap = 86400.0
    d = policy.decide(
        status=status,
        failures_before=failures,
        schedule=SCHEDULE,
        retry_after_s=retry_after,
        retry_after_cap_s=cap,
        rand=0.0,
    )
    assert d.verdict is policy.Verdict.RETRY and d.delay_s is not None
    assert d.delay_s >= min(retry_after, cap) - 1e-9


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "succeeded"),
        (204, "succeeded"),
        (301, "retry"),
        (400, "retry"),
        (410, "gone"),
        (500, "retry"),
        (None, "retry"),
    ],
)
def test_classify(status: int | None, verdict: str) -> None:
    """2xx succeeds, 410 is gone, redirects and everything else are failures."""
    assert policy.classify(status).value == verdict


def _event(type_: str = "import.completed", source: str = "td") -> Event:
    return Event(
        id="evt_1",
        type=type_,
        timestamp="2026-11-22T10:00:00.123Z",
        watch_id="w_1",
        data={
            "source": source,
            "kind": "users",
            "job_id": "j1",
            "status": "COMPLETED",
            "counts": {"total": 100, "succeeded": 98, "failed": 2},
        },
    )


@pytest.mark.parametrize("fmt", list(formats.Format))
def test_formats(fmt: formats.Format) -> None:
    """Each format carries a readable summary with source, job, status and counts."""
    import json

    body = json.loads(formats.render(fmt, _event()))
    if fmt is formats.Format.STANDARD:
        assert body["type"] == "import.completed" and body["data"]["job_id"] == "j1"
        return
    text = body.get("text") or body.get("content")
    assert "td/users" in text and "j1" in text and "98 succeeded" in text and "2 failed" in text


HOSTILE_ID = "<!channel> @everyone <mailto:it@evil.example|Re-enter your password now>"


def _hostile() -> Event:
    event = _event()
    return Event(id=event.id, type=event.type, timestamp=event.timestamp,
                 watch_id=event.watch_id, data={**event.data, "job_id": HOSTILE_ID,
                                                "status": "[click](https://evil.example)\n# big"})  # fmt: skip


@pytest.mark.parametrize("fmt", [formats.Format.SLACK, formats.Format.TEAMS])
def test_slack_and_teams_show_upstream_text_as_text(fmt: formats.Format) -> None:
    """A job id written as a channel ping and a link reaches the chat as text: & < >
    escaped, nothing of it markup, and on one line."""
    import json

    body = json.loads(formats.render(fmt, _hostile()))
    text = body.get("text", "")
    assert "<" not in text and ">" not in text and "\n" not in text
    assert "&lt;!channel&gt; @everyone &lt;mailto:it@evil.example|Re-enter" in text
    if fmt is formats.Format.TEAMS:  # markdown there: a masked link hides its target
        assert "[click](" not in text and "&#91;click&#93;(https://evil.example)" in text


def test_discord_pings_nobody_and_links_nothing() -> None:
    """Discord is told to parse no mention, and markdown in upstream text is escaped."""
    import json

    body = json.loads(formats.render(formats.Format.DISCORD, _hostile()))
    assert body["allowed_mentions"] == {"parse": []}
    content = body["content"]
    assert "\\[click\\]\\(https" in content and "\n" not in content
    assert "\\<!channel\\> \\@everyone" in content


def test_a_cut_never_ends_inside_an_escape() -> None:
    """A long summary cut to the chat's limit does not end on half an escape."""
    assert formats._cut("ab&amp;cd", 4) == "ab"
    assert formats._cut("ab\\*cd", 3) == "ab"
    assert formats._cut("ab\\\\cd", 4) == "ab\\\\"


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("192.168.0.1", True),
        ("172.16.5.5", True),
        ("169.254.169.254", True),
        ("::1", True),
        ("fe80::1", True),
        ("::ffff:10.0.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("100.100.100.200", True),
        ("fd00:ec2::254", True),
        ("100.64.0.1", True),  # CGNAT
        ("fec0::1", True),  # site-local
        ("0.1.2.3", True),
        ("192.0.0.8", True),
        ("198.18.0.1", True),
        ("240.0.0.1", True),
        ("2002:0a00:0001::", True),  # 6to4 around 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo around 10.0.0.1
        ("64:ff9b::a00:1", True),  # NAT64 around 10.0.0.1
        ("64:ff9b::808:808", False),  # NAT64 around 8.8.8.8
    ],
)
def test_address_guard(address: str, refused: bool) -> None:
    """Private, loopback, link-local, multicast, unspecified and metadata ranges are refused."""
    assert (address_refused(address) is not None) is refused


def test_url_guard() -> None:
    """https only unless private targets are allowed; no credentials in URLs."""
    strict, loose = TargetPolicy(), TargetPolicy(allow_private=True)
    with pytest.raises(TargetRefused):
        check_url("http://example.com/h", strict)
    assert check_url("http://127.0.0.1:9/h", loose) == ("127.0.0.1", 9)
    with pytest.raises(TargetRefused):
        check_url("https://user:pw@example.com/h", strict)
    with pytest.raises(TargetRefused):
        check_url("gopher://example.com", loose)
    with pytest.raises(TargetRefused, match="private"):
        check_url("https://10.0.0.1/h", strict)
    narrow = TargetPolicy.build(allow_private=False, allowed_targets=["10.1.2.0/24"])
    with pytest.raises(TargetRefused, match="https"):  # a public literal is not "allowed"
        check_url("http://93.184.216.34/hook", narrow)


def test_allowed_targets_open_only_what_they_name() -> None:
    """allowed_targets lets named hosts and networks through; the guard holds elsewhere."""
    policy = TargetPolicy.build(
        allow_private=False, allowed_targets=["10.1.2.0/24", "Hooks.Internal", "fd00::5"]
    )
    assert check_url("http://10.1.2.7:8080/h", policy) == ("10.1.2.7", 8080)
    assert check_url("http://hooks.internal/h", policy) == ("hooks.internal", 80)
    assert policy.refused("fd00::5") is None
    check_host("hooks.internal", 80, policy)  # never resolved: named explicitly
    for url in ("https://10.1.3.1/h", "https://127.0.0.1/h", "https://[fd00::6]/h"):
        with pytest.raises(TargetRefused):
            check_url(url, policy)
    assert policy.refused("10.9.9.9") is not None


def test_matching() -> None:
    """Patterns and source filters pick the subscriptions an event goes to."""
    assert type_matches("import.*", "import.failed") and type_matches("*", "ping")
    assert not type_matches("import.failed", "import.completed")
    subs = [
        Subscription(id="a", url="https://a", secrets=(("s", None),)),
        Subscription(
            id="b", url="https://b", secrets=(("s", None),), event_types=("import.failed",)
        ),
        Subscription(id="c", url="https://c", secrets=(("s", None),), sources=("fs",)),
    ]
    assert [d.subscription_id for d in deliveries_for(_event(), subs, 0.0)] == ["a"]
    assert [
        d.subscription_id for d in deliveries_for(_event("import.failed", "fs"), subs, 0.0)
    ] == ["a", "b", "c"]


def test_lag_is_labelled_by_what_was_delivered() -> None:
    """An event's own delivery is `first`; a replay (its own delivery id) and a ping are
    labelled apart, so a replay's minutes of lag do not read as slow delivery."""
    from bridge.delivery.deliverer import lag_kind
    from bridge.model import Delivery, DeliveryStatus
    from bridge.store.deliveries import delivery_id

    def delivery(event_id: str, replay: int = 0) -> Delivery:
        return Delivery(
            id=delivery_id(event_id, "sub_1", replay),
            event_id=event_id,
            subscription_id="sub_1",
            status=DeliveryStatus.SUCCEEDED,
            created_at=0,
            detected_at=0,
        )

    assert lag_kind(delivery("evt_abc")) == "first"
    assert lag_kind(delivery("evt_abc", replay=123)) == "replay"
    assert lag_kind(delivery("evt_ping_0123")) == "ping"


@given(st.binary(max_size=500), st.integers(0, 2**40), st.text(min_size=1, max_size=40))
def test_ed25519_signatures_follow_the_spec(body: bytes, timestamp: int, msg_id: str) -> None:
    """A whsk_ secret signs v1a; its whpk_ public key verifies by the spec's own
    construction and by `verify`; another key does not."""
    secret = signing.new_secret("v1a")
    public = signing.public_key(secret)
    assert secret.startswith("whsk_") and public is not None and public.startswith("whpk_")
    header = signing.signature_header([secret], msg_id, timestamp, body)
    assert header.startswith("v1a,")
    assert spec_verify(public, msg_id, timestamp, body, header)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": header,
    }
    assert signing.verify(public, headers, body, now=timestamp) == msg_id
    other = signing.public_key(signing.new_secret("v1a"))
    assert other is not None and not spec_verify(other, msg_id, timestamp, body, header)


def test_mixed_schemes_and_bad_keys() -> None:
    """During a rotation from HMAC to Ed25519 both sign; each receiver verifies its own;
    a malformed whsk_ secret is refused with a clear message."""
    hmac_secret, ed_secret = signing.new_secret(), signing.new_secret("v1a")
    header = signing.signature_header([ed_secret, hmac_secret], "evt_1", 100, b"{}")
    headers = {"webhook-id": "evt_1", "webhook-timestamp": "100", "webhook-signature": header}
    assert signing.verify(hmac_secret, headers, b"{}", now=100) == "evt_1"
    public = signing.public_key(ed_secret)
    assert public is not None and signing.verify(public, headers, b"{}", now=100) == "evt_1"
    with pytest.raises(signing.InvalidSignature):
        signing.verify(public, headers, b"{changed}", now=100)
    for bad in ("whsk_!!!", "whsk_" + "QUFB" * 4):
        with pytest.raises(signing.InvalidSecret, match="whsk_"):
            signing.check_secret(bad)
    assert signing.public_key(hmac_secret) is None and signing.scheme_of(ed_secret) == "v1a"
