"""A webhook receiver on loopback that verifies every request with `standardwebhooks`."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    t: float
    path: str
    webhook_id: str
    timestamp: int
    verified: bool
    body: Any
    raw: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    """Per path: a secret to verify with and a script of answers (status, headers)."""

    secrets: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    hang: dict[str, asyncio.Event] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    server: TestServer | None = None
    in_flight: int = 0  # requests being answered right now

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(f"/{path}"))

    async def close(self) -> None:
        for event in self.hang.values():
            event.set()
        if self.server:
            await self.server.close()

    def for_path(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = False
        secret = self.secrets.get(path)
        if secret:
            try:
                Webhook(secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        self.received.append(
            Received(
                time.time(),
                path,
                headers.get("webhook-id", ""),
                int(headers.get("webhook-timestamp", "0")),
                verified,
                json.loads(body),
                body,
                headers,
            )
        )
        if path in self.hang:
            await self.hang[path].wait()
        if path in self.delay:
            await asyncio.sleep(self.delay[path])  # a slow receiver, by design
        script = self.scripts.get(path)
        status, extra = script.pop(0) if script else (200, {})
        return web.Response(status=status, headers=extra, text="ok" if status < 300 else "nope")
