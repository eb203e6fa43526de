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
