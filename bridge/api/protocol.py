"""The admin API's HTTP server: aiohttp's, with its own protocol errors in the API's
one error shape and logged without the offending bytes.

aiohttp answers a malformed request (a NUL or control character in a header, an
unknown method, a URL over 8,190 bytes) before any middleware runs, as text/plain,
and logs the raw header line, an Authorization value included. The request handler
class is the only place that sees those, so it is replaced here, and nowhere else.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from bridge.api.error_shape import HTTP_CODES, error_response

log = structlog.get_logger("bridge.api")


class _JsonErrorHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # The exception's text can quote the request line or a header: log its type only.
        log.info("bad_http_request", status=status, error=type(exc).__name__ if exc else None)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        phrase = _phrase(status)
        code = HTTP_CODES.get(status, "bad_request" if status < 500 else "internal_error")
        resp = error_response(status, code, phrase)
        resp.force_close()
        return resp

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        name = type(exc).__name__ if isinstance(exc, BaseException) else None
        log.warning("http_protocol_error", error=name)


class _JsonErrorServer(Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


async def start_site(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float
) -> tuple[web.AppRunner, int]:
    """Serve app on host:port; returns the runner and the bound port. OSError when the
    address cannot be bound (in use, not local)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    server = runner.server
    assert server is not None
    server.__class__ = _JsonErrorServer
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = [a for a in runner.addresses if isinstance(a, tuple)]
    return runner, int(bound[0][1]) if bound else port
