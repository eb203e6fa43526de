"""Standard Webhooks signatures. Pure.

    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"> [v1,… …]

The secret is `whsec_` + base64 of the key bytes; during a rotation grace period
every live secret signs, space-separated, so receivers holding either verify.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
MIN_KEY_BYTES = 24
NEW_KEY_BYTES = 32


class InvalidSecret(ValueError):
    pass


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(NEW_KEY_BYTES)).decode()


@functools.lru_cache(maxsize=4096)  # decoded once per secret, not once per attempt
def secret_key(secret: str) -> bytes:
    """The key bytes of a whsec_ secret; InvalidSecret when it is not one."""
    if not secret.startswith(PREFIX):
        raise InvalidSecret("a secret starts with whsec_")
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("a secret is whsec_ followed by base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise InvalidSecret(f"a secret holds at least {MIN_KEY_BYTES} random bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.digest(secret_key(secret), to_sign, hashlib.sha256)
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def webhook_headers(
    secrets_: list[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, msg_id, timestamp, body),
    }


TOLERANCE_S = 300  # what the Standard Webhooks libraries accept either side of now


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_s: float | None = TOLERANCE_S,
) -> str:
    """Check a received webhook as a Standard Webhooks receiver would; returns its id.
    Raises InvalidSignature saying what is wrong. tolerance_s None: any age (old files)."""
    lower = {k.lower(): v for k, v in headers.items()}
    missing = [
        h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if h not in lower
    ]
    if missing:
        raise InvalidSignature(f"missing header(s): {', '.join(missing)}")
    msg_id = lower["webhook-id"]
    try:
        timestamp = int(lower["webhook-timestamp"])
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not unix seconds") from None
    if tolerance_s is not None and abs(now - timestamp) > tolerance_s:
        raise InvalidSignature(
            f"webhook-timestamp is {now - timestamp:.0f} s from now (tolerance {tolerance_s:.0f} s)"
        )
    expected = sign(secret, msg_id, timestamp, body)
    offered = lower["webhook-signature"].split()
    if not any(hmac.compare_digest(expected, sig) for sig in offered):
        raise InvalidSignature("no signature matches this secret (wrong secret or changed body)")
    return msg_id


class InvalidSignature(ValueError):
    pass
