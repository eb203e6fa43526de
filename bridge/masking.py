"""What may be shown of a value that may be a credential. Pure."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

MASK = "**********"  # as pydantic shows a SecretStr
CHAT_FORMATS = ("slack", "discord", "teams")


def masked_url(url: str, *, chat: bool) -> str:
    """A chat service's incoming-webhook URL is a credential in its path; any URL's
    password and query values may be (user:pass@, ?api_key=…). Placeholders such as
    {job_id} are kept as written."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if parts.username is not None:
        host = f"{parts.username}:{MASK}@{host}" if parts.password else f"{parts.username}@{host}"
    if chat:
        return f"{parts.scheme}://{host}/{MASK}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{k}={MASK}" for k, _ in pairs)
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def subscription_url(url: str, fmt: str) -> str:
    """A subscription's URL as a page or a listing may show it."""
    return masked_url(url, chat=fmt in CHAT_FORMATS)
