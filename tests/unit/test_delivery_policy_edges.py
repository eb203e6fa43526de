"""Delivery decisions and signatures at their edges: exact answers where a comparison,
a constant or a clamp decides (the property tests in test_delivery_policies.py check
the shape; these pin the boundaries)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bridge.delivery import signing
from bridge.delivery.policy import (
    DEFAULT_SCHEDULE_S,
    JITTER,
    Decision,
    Verdict,
    classify,
    decide,
    retry_delay,
)

SCHEDULE = (10.0, 100.0)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(199, "retry"), (200, "succeeded"), (299, "succeeded"), (300, "retry"), (410, "gone"),
     (None, "retry"), (409, "retry")],
)  # fmt: skip
def test_what_an_answer_means(status: int | None, verdict: str) -> None:
    assert classify(status) == verdict


def test_the_nth_retry_waits_the_nth_step_within_the_jitter() -> None:
    assert retry_delay(0, SCHEDULE, 0.5) is None
    assert retry_delay(1, SCHEDULE, 0.5) == 10.0
    assert retry_delay(2, SCHEDULE, 0.5) == 100.0
    assert retry_delay(3, SCHEDULE, 0.5) is None
    assert retry_delay(1, SCHEDULE, 0.0) == pytest.approx(10.0 * (1 - JITTER))
    assert retry_delay(1, SCHEDULE, 0.75) == pytest.approx(10.0 * (1 + JITTER / 2))
    assert retry_delay(1, SCHEDULE, 5.0) == pytest.approx(10.0 * (1 + JITTER))  # clamped
    assert retry_delay(1, SCHEDULE, -5.0) == pytest.approx(10.0 * (1 - JITTER))
    assert retry_delay(1, SCHEDULE, 0.5, jitter=0.5) == 10.0
    assert retry_delay(1, SCHEDULE, 0.0, jitter=2.0) == 0.0  # never negative


def test_the_schedule_and_jitter_are_what_the_readme_says() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `delivery.retry_"))
    documented = re.search(r"`\[([\d, ]+)\]`", row)
    jitter = re.search(r"±(\d+) %", row)
    assert documented and jitter, row
    assert tuple(float(x) for x in documented.group(1).split(",")) == DEFAULT_SCHEDULE_S
    assert int(jitter.group(1)) / 100 == JITTER


def call(status: int | None, failures: int = 0, retry_after: float | None = None) -> Decision:
    return decide(
        status=status,
        failures_before=failures,
        schedule=SCHEDULE,
        retry_after_s=retry_after,
        retry_after_cap_s=50.0,
        rand=0.5,
    )


def test_what_follows_an_attempt() -> None:
    assert call(204) == Decision(Verdict.SUCCEEDED)
    assert call(410) == Decision(Verdict.GONE)
    assert call(500) == Decision(Verdict.RETRY, 10.0)
    assert call(500, failures=1) == Decision(Verdict.RETRY, 100.0)
    assert call(500, failures=2) == Decision(Verdict.DEAD)


def test_retry_after_is_honoured_within_its_cap_on_429_and_503_only() -> None:
    assert call(429, retry_after=30.0) == Decision(Verdict.RETRY, 30.0)
    assert call(503, retry_after=30.0) == Decision(Verdict.RETRY, 30.0)
    assert call(503, retry_after=5.0) == Decision(Verdict.RETRY, 10.0)  # never sooner
    assert call(503, retry_after=9999.0) == Decision(Verdict.RETRY, 50.0)  # capped
    assert call(500, retry_after=30.0) == Decision(Verdict.RETRY, 10.0)
    assert call(429) == Decision(Verdict.RETRY, 10.0)


def test_fresh_secrets_are_of_their_scheme_and_size() -> None:
    v1 = signing.new_secret()
    assert v1.startswith("whsec_") and len(signing.secret_key(v1)) == signing.NEW_KEY_BYTES
    assert signing.scheme_of(v1) == "v1"
    v1a = signing.new_secret("v1a")
    assert v1a.startswith("whsk_") and signing.scheme_of(v1a) == "v1a"
    assert len(base64.b64decode(v1a.removeprefix("whsk_"))) == 32
    assert signing.public_key(v1) is None
    public = signing.public_key(v1a)
    assert public is not None and len(base64.b64decode(public.removeprefix("whpk_"))) == 32


def test_secret_sizes_at_their_bounds() -> None:
    assert signing.MIN_KEY_BYTES == 24
    ok = "whsec_" + base64.b64encode(bytes(24)).decode()
    signing.check_secret(ok)
    with pytest.raises(signing.InvalidSecret, match="at least 24"):
        signing.check_secret("whsec_" + base64.b64encode(bytes(23)).decode())
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    for raw in (seed, seed + bytes(32)):  # the seed, or libsodium's seed + public key
        signing.check_secret("whsk_" + base64.b64encode(raw).decode())
    for raw in (seed[:31], seed + bytes(1)):
        with pytest.raises(signing.InvalidSecret, match="32-byte"):
            signing.check_secret("whsk_" + base64.b64encode(raw).decode())
    with pytest.raises(signing.InvalidSecret, match="base64"):
        signing.check_secret("whsk_not base64!")
    with pytest.raises(signing.InvalidSecret, match="base64"):
        signing.check_secret("whsec_not base64!")
    with pytest.raises(signing.InvalidSecret, match="starts with"):
        signing.check_secret("nope")


def test_headers_carry_id_time_and_every_signature() -> None:
    a, b = signing.new_secret(), signing.new_secret("v1a")
    headers = signing.webhook_headers([a, b], "msg_1", 1700000000, b"{}")
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == "1700000000"
    first, second = headers["webhook-signature"].split(" ")
    assert first == signing.sign(a, "msg_1", 1700000000, b"{}") and first.startswith("v1,")
    assert second.startswith("v1a,")


def test_verification_at_its_bounds() -> None:
    secret = signing.new_secret()
    body = b'{"a":1}'
    headers = signing.webhook_headers([secret], "msg_1", 1000, body)
    assert signing.verify(secret, headers, body, now=1300.0) == "msg_1"  # at the tolerance
    assert signing.verify(secret, headers, body, now=700.0) == "msg_1"
    for now in (1300.5, 699.5):
        with pytest.raises(signing.InvalidSignature, match="from now"):
            signing.verify(secret, headers, body, now=now)
    assert signing.verify(secret, headers, body, now=9e9, tolerance_s=None) == "msg_1"
    upper = {k.upper(): v for k, v in headers.items()}
    assert signing.verify(secret, upper, body, now=1000.0) == "msg_1"
    with pytest.raises(signing.InvalidSignature, match="changed body"):
        signing.verify(secret, headers, body + b" ", now=1000.0)
    with pytest.raises(signing.InvalidSignature, match="changed body"):
        signing.verify(signing.new_secret(), headers, body, now=1000.0)
    with pytest.raises(signing.InvalidSignature, match="webhook-signature"):
        signing.verify(secret, {k: v for k, v in headers.items() if k != "webhook-signature"},
                       body, now=1000.0)  # fmt: skip
    with pytest.raises(signing.InvalidSignature, match="unix seconds"):
        signing.verify(secret, {**headers, "webhook-timestamp": "soon"}, body, now=1000.0)


def test_ed25519_verification_wants_a_v1a_signature_by_that_key() -> None:
    private = signing.new_secret("v1a")
    public = signing.public_key(private)
    assert public is not None
    body = b"{}"
    headers = signing.webhook_headers([private], "msg_2", 1000, body)
    assert signing.verify(public, headers, body, now=1000.0) == "msg_2"
    sig = headers["webhook-signature"].removeprefix("v1a,")
    for offered in (f"v1,{sig}", "v1a,not-base64!", f"v1a,{sig[:-4]}AAA="):
        with pytest.raises(signing.InvalidSignature, match="public key"):
            signing.verify(public, {**headers, "webhook-signature": offered}, body, now=1000.0)
    other = signing.public_key(signing.new_secret("v1a"))
    assert other is not None
    with pytest.raises(signing.InvalidSignature, match="public key"):
        signing.verify(other, headers, body, now=1000.0)
    both = f"v1,xyz {headers['webhook-signature']}"  # any one that matches will do
    assert signing.verify(public, {**headers, "webhook-signature": both}, body, now=1000.0)
