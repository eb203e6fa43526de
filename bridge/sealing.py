"""Secrets sealed at rest: AES-256-GCM under the keys of `secrets_keys`.

The first key seals; every key opens, so keys rotate without a pause: add the new key
second on every replica, then put it first, run `import-bridge secrets rotate`, and
drop the old one. A sealed value names its key by a short id (a hash of the key, never
the key), so a value the keys at hand cannot open is a clear error naming that id.
A value that is not sealed (written before keys were configured) is read as it is and
sealed the next time it is written, or by `secrets rotate`.

Format: `sealed:1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`, a 96-bit random
nonce per value; the associated data binds a value to what it is (a webhook secret
cannot be moved to where a header value is read)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:1:"
_KEY_ID = re.compile(r"[0-9a-f]{8}")
KEY_BYTES = 32
NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value that cannot be opened with the configured keys. Says which key
    sealed it (its id), never any value."""


def key_id(key: bytes) -> str:
    """A key's public name: 8 hex digits of its SHA-256."""
    return hashlib.sha256(b"import-job-bridge key id\x00" + key).hexdigest()[:8]


def parse_key(text: str) -> bytes:
    """A key as configured: 32 bytes in base64 (standard or URL-safe, padded or not).
    ValueError saying what a key must be."""
    cleaned = text.strip()
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise ValueError(
            "a key is 32 random bytes in base64 (`import-bridge secrets new-key` makes one)"
        )
    return raw


def new_key() -> str:
    """A fresh key, as configured."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


class Sealer:
    """Seals with the first key, opens with any. Without keys it seals nothing (values
    stay as they are) and opens only what is not sealed."""

    def __init__(self, keys: Sequence[bytes] = ()) -> None:
        self._keys = [(key_id(k), AESGCM(k)) for k in keys]
        self._by_id = dict(self._keys)

    @property
    def sealing(self) -> bool:
        return bool(self._keys)

    @property
    def current_id(self) -> str | None:
        return self._keys[0][0] if self._keys else None

    def seal(self, value: str, what: str) -> str:
        """value sealed under the first key (as it is when there is none); `what` names
        its kind (bound to it: it must be opened as the same kind)."""
        if not self._keys:
            return value
        kid, aead = self._keys[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = aead.encrypt(nonce, value.encode(), what.encode())
        return f"{PREFIX}{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str, what: str) -> str:
        """The clear value of a sealed one (SealError when no key at hand opens it); a
        value that is not sealed is returned as it is."""
        if not is_sealed(value):
            return value
        kid, _, body = value[len(PREFIX) :].partition(":")
        aead = self._by_id.get(kid)
        if aead is None:
            held = ", ".join(k for k, _ in self._keys) or "none"
            named = kid if _KEY_ID.fullmatch(kid) else "(no key id: not a sealed value)"
            raise SealError(f"sealed with key {named}, which secrets_keys does not hold ({held})")
        try:
            raw = base64.urlsafe_b64decode(body)
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], what.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError(f"sealed with key {kid}, but it does not open: damaged") from None

    def is_current(self, value: str) -> bool:
        """Sealed under the first key already (nothing for `secrets rotate` to do); with
        no keys, anything is as it should be."""
        if not self._keys:
            return True
        return value.startswith(f"{PREFIX}{self._keys[0][0]}:")
