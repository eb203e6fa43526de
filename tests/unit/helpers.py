"""Builders shared by the unit tests: scripted upstreams and senders, sample bodies,
the td source's provider, and the runs a worker would make."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from bridge.app import token_slot
from bridge.clock import FakeClock
from bridge.delivery.deliverer import Deliverer
from bridge.delivery.sender import SendResult
from bridge.events import iso_ms
from bridge.metrics import Metrics
from bridge.model import Event
from bridge.poll.poller import Poller
from bridge.providers.http import HttpAnswer
from bridge.providers.talkdesk import TalkdeskProvider
from bridge.store.deliveries import DeliveryStore
from bridge.store.redis import RedisStore
from bridge.store.verdicts import Verdict

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

FS = "http://fs.test"
TD = "http://td.test"


class ScriptedHttp:
    """Answers each URL from its own queue of answers; records every request."""

    def __init__(self) -> None:
        self.script: dict[str, list[HttpAnswer]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def queue(self, url: str, *answers: HttpAnswer) -> None:
        self.script.setdefault(url, []).extend(answers)

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], data: Any = None
    ) -> HttpAnswer:
        self.requests.append((method, url, dict(headers)))
        queue = self.script.get(url)
        if not queue:
            raise AssertionError(f"unexpected request {method} {url}")
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def count(self, url: str) -> int:
        return sum(1 for _, u, _ in self.requests if u == url)


def ok(body: Any) -> HttpAnswer:
    return HttpAnswer(200, json.dumps(body).encode())


def fs_body(status: str, imports: int = 10) -> dict[str, Any]:
    return {
        "imports": imports,
        "job": {"id": "j", "status": status, "created": "2026-01-01T00:00:00Z"},
    }


def td_body(status: str, done: int, total: int = 100) -> dict[str, Any]:
    return {
        "id": "t",
        "status": status,
        "total_records": total,
        "completed_records": done,
        "failed_records": 0,
        "type": "CREATE_USERS",
    }


def td_provider(store: RedisStore, clock: FakeClock, http: Any) -> TalkdeskProvider:
    """The td source's provider against TD, its token budget wired as the daemon does."""
    return TalkdeskProvider(
        source="td",
        account="acme",
        client_id="id",
        client_secret="shh",
        http=http,
        tokens=store.sources,
        clock=clock,
        base_url=TD,
        token_url=f"{TD}/oauth/token",
        token_throttle=partial(token_slot, store, "td"),
    )


def twin_of(poller: Poller) -> Poller:
    """Another replica's poller on the same store, sources and clock."""
    return Poller(
        store=poller._store,
        http=poller._http,
        sources=poller._sources,
        settings=poller._settings,
        clock=poller._clock,
        metrics=Metrics(),
    )


async def run_due(store: RedisStore, clock: FakeClock, poller: Poller) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for claimed in await store.claim(clock.now(), 60, 100, poller._rate_limits):
        verdicts.append(await poller.poll(claimed))
    return verdicts


URL = "https://hooks.example.com/in"


class ScriptedSender:
    """Answers each send with the next scripted status; records what was sent."""

    def __init__(self) -> None:
        self.statuses: list[int | None] = []
        self.sent: list[dict[str, str]] = []

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        self.sent.append(headers)
        status = self.statuses.pop(0) if self.statuses else 200
        error = None if status is not None and 200 <= status < 300 else f"HTTP {status}"
        return SendResult(status, 0.01, error=error)


@dataclass
class Env:
    store: DeliveryStore
    clock: FakeClock
    sender: ScriptedSender
    deliverer: Deliverer
    metrics: Metrics

    async def emit(self, n: int) -> Event:
        now = self.clock.now()
        event = Event(
            id=f"evt_{n}",
            type="import.failed",
            timestamp=iso_ms(now),
            watch_id=f"w{n}",
            data={"source": "fs", "job_id": f"j{n}"},
        )
        await self.store.emit(event, now, 3600)
        await self.deliverer.refresh_subscriptions()
        await self.deliverer.fan_out()
        return event

    async def run_due(self) -> list[str]:
        """Claim what is due now and attempt each, as a worker would."""
        claimed = await self.store.claim(self.clock.now(), 60, 100)
        return [await self.deliverer.attempt(c) for c in claimed]

    def count(self, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "bridge_deliveries_total", {"outcome": outcome}
        )
        return value or 0.0


def spec_verify(public: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """The Standard Webhooks v1a construction, checked with `cryptography` directly:
    Ed25519 over "{id}.{timestamp}.{body}", base64, after "v1a,"."""
    import base64

    from cryptography.exceptions import InvalidSignature as Bad
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    for sig in header.split():
        version, _, encoded = sig.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(encoded), f"{msg_id}.{timestamp}.".encode() + body)
            return True
        except Bad:
            continue
    return False


# ------------------------------------------------------------------ console
async def sign_in(client) -> str:  # type: ignore[no-untyped-def]
    resp = await client.post("/ui/login", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui"
    cookie = resp.cookies["bridge_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/ui"
    return str(cookie.value)


async def csrf_of(client) -> str:  # type: ignore[no-untyped-def]
    import re

    text = await (await client.get("/ui/subscriptions")).text()
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found
    return found.group(1)
