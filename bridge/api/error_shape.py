"""The one error shape of the admin API: {"code", "message", "fields": [{name, description}]}."""

from __future__ import annotations

import re
from typing import Any

import orjson
import structlog
from aiohttp import web
from pydantic import ValidationError

from bridge.errors import StoreOutage, StoreRefusesWrites
from bridge.outage import OutageLog
from bridge.sealing import SealError

log = structlog.get_logger("bridge.api")
# The process's one record of Redis' state: the API says an outage once, as loops do.
OUTAGE: web.AppKey[OutageLog] = web.AppKey("outage", OutageLog)
# A client may ask again this soon after a 503 for Redis (it is retried by every loop).
RETRY_AFTER_S = 2


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"code": code, "message": message, "fields": fields or []}
    return web.json_response(body, status=status, headers=headers)


def validation_fields(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as {name, description}; never echoes the submitted value."""
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(p) for p in err["loc"]) or "body"
        out.append({"name": name, "description": _PYDANTIC_PREFIX.sub("", err["msg"])})
    return out


_PYDANTIC_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.fields, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason, headers=_allow_header(exc))
    except Exception as exc:
        if isinstance(exc, StoreOutage):  # no traceback: a state of Redis, said once
            _outage(request).failed("api", exc)
            message = (
                "Redis takes no writes now (full, or read-only); try again shortly"
                if isinstance(exc, StoreRefusesWrites)
                else "Redis is not reachable; try again shortly"
            )
            retry = {"Retry-After": str(RETRY_AFTER_S)}
            return error_response(503, "unavailable", message, headers=retry)
        if isinstance(exc, SealError):  # a key missing on this replica: said, not a 500
            return error_response(503, "secret_unreadable", str(exc))
        log.exception("api_handler_failed", path=request.path, method=request.method)
        return error_response(500, "internal_error", "internal error; see the bridge's log")
    if response.status == 201:  # something was created: Redis takes writes
        _outage(request).wrote()
    return response


def _outage(request: web.Request) -> OutageLog:
    return request.config_dict[OUTAGE]


def _allow_header(exc: web.HTTPException) -> dict[str, str]:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}


async def read_json(request: web.Request, max_bytes: int) -> Any:
    """The request body as JSON, with a size cap and clear errors."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "payload_too_large", f"body larger than {max_bytes} bytes")
    # StreamReader.read(n) returns what has arrived so far: read until the end (or
    # just past the cap), or a body sent in several writes would be cut short
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = await request.content.read(max_bytes + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    raw = b"".join(chunks)
    if len(raw) > max_bytes:
        raise ApiError(413, "payload_too_large", f"body larger than {max_bytes} bytes")
    if not raw:
        raise ApiError(400, "invalid_json", "request body is empty; a JSON object is expected")
    try:
        # orjson refuses nesting past 1,024 levels; the stdlib parser would recurse
        return orjson.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None
