"""Standard Webhooks signatures. Pure.

    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"> [v1,… …]
                       v1a,<base64 Ed25519 signature of the same>            (opt-in)

A symmetric secret is `whsec_` + base64 of the key bytes. An asymmetric one is
`whsk_` + base64 of an Ed25519 private key (its 32-byte seed); receivers verify with
the public key, `whpk_` + base64 of its 32 bytes, and can never sign themselves.
During a rotation grace period every live secret signs, space-separated, so receivers
holding either verify.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidSignature as InvalidSignatureError
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PREFIX = "whsec_"
ED25519_PREFIX = "whsk_"
PUBLIC_PREFIX = "whpk_"
MIN_KEY_BYTES = 24
NEW_KEY_BYTES = 32
SCHEMES = ("v1", "v1a")  # HMAC-SHA256, Ed25519


class InvalidSecret(ValueError):
    pass


def new_secret(scheme: str = "v1") -> str:
    """A fresh secret: whsec_ (v1, HMAC) or whsk_ (v1a, Ed25519)."""
    if scheme == "v1a":
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return ED25519_PREFIX + base64.b64encode(seed).decode()
    return PREFIX + base64.b64encode(secrets.token_bytes(NEW_KEY_BYTES)).decode()


def scheme_of(secret: str) -> str:
    return "v1a" if secret.startswith(ED25519_PREFIX) else "v1"


def check_secret(secret: str) -> None:
    """InvalidSecret unless this is a usable whsec_ or whsk_ secret."""
    if secret.startswith(ED25519_PREFIX):
        _private_key(secret)
    else:
        secret_key(secret)


@functools.lru_cache(maxsize=4096)
def _private_key(secret: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(secret.removeprefix(ED25519_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("a whsk_ secret is whsk_ followed by base64") from None
    if len(raw) not in (32, 64):  # the seed, or seed + public key (libsodium's layout)
        raise InvalidSecret("a whsk_ secret holds a 32-byte Ed25519 key")
    return Ed25519PrivateKey.from_private_bytes(raw[:32])


def public_key(secret: str) -> str | None:
    """whpk_ public key of a whsk_ secret (receivers verify with it); None for whsec_."""
    if not secret.startswith(ED25519_PREFIX):
        return None
    raw = _private_key(secret).public_key().public_bytes_raw()
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


@functools.lru_cache(maxsize=4096)  # decoded once per secret, not once per attempt
def secret_key(secret: str) -> bytes:
    """The key bytes of a whsec_ secret; InvalidSecret when it is not one."""
    if not secret.startswith(PREFIX):
        raise InvalidSecret("a secret starts with whsec_ (or whsk_ for Ed25519)")
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("a secret is whsec_ followed by base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise InvalidSecret(f"a secret holds at least {MIN_KEY_BYTES} random bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    if secret.startswith(ED25519_PREFIX):
        return "v1a," + base64.b64encode(_private_key(secret).sign(to_sign)).decode()
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
    offered = lower["webhook-signature"].split()
    if secret.startswith(PUBLIC_PREFIX):
        if not any(_ed25519_ok(secret, msg_id, timestamp, body, sig) for sig in offered):
            raise InvalidSignature(
                "no v1a signature matches this public key (wrong key or changed body)"
            )
        return msg_id
    expected = sign(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, sig) for sig in offered):
        raise InvalidSignature("no signature matches this secret (wrong secret or changed body)")
    return msg_id


def _ed25519_ok(public: str, msg_id: str, timestamp: int, body: bytes, offered: str) -> bool:
    version, _, encoded = offered.partition(",")
    if version != "v1a":
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(public.removeprefix(PUBLIC_PREFIX), validate=True)
        )
        key.verify(
            base64.b64decode(encoded, validate=True), f"{msg_id}.{timestamp}.".encode() + body
        )
    except (binascii.Error, ValueError, InvalidSignatureError):
        return False
    return True


class InvalidSignature(ValueError):
    pass
