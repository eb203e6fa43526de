"""A webhook receiver for the demo: verifies every request with the `standardwebhooks`
package (what a subscriber would use) and keeps what arrived."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    at: float
    webhook_id: str
    verified: bool
    type: str
    data: dict[str, Any]


@dataclass
class VerifyingReceiver:
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    on_receive: Callable[[Received], None] = lambda r: None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = False
        if self.secret:
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except (WebhookVerificationError, ValueError, TypeError):
                verified = False  # binascii.Error (a ValueError) for a malformed signature
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        data = payload.get("data")
        got = Received(
            at=time.time(),
            webhook_id=headers.get("webhook-id", ""),
            verified=verified,
            type=str(payload.get("type", "?")),
            data=data if isinstance(data, dict) else {},
        )
        self.received.append(got)
        self.on_receive(got)
        # An unverifiable request is refused, as a real receiver would.
        return web.Response(status=204 if verified else 401)
