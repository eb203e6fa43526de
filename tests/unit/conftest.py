"""Fixtures shared by the unit tests (the builders are in helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.api.server import ApiContext, build_api
from bridge.clock import FakeClock
from bridge.delivery.deliverer import Deliverer
from bridge.delivery.signing import new_secret
from bridge.metrics import Metrics
from bridge.model import Subscription
from bridge.poll.poller import PolledSource, Poller
from bridge.providers.fullstory import FullStoryProvider
from bridge.settings import DeliverySettings, PollSettings
from bridge.store.deliveries import DeliveryStore
from bridge.store.durations import DurationStore
from bridge.store.redis import RedisStore
from tests.unit.helpers import FS, TOKEN, URL, Env, ScriptedHttp, ScriptedSender, td_provider


@pytest.fixture
async def api(prefix: str) -> AsyncIterator[tuple[TestClient, RedisStore, list[int]]]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = RedisStore(redis, prefix)
    woken: list[int] = []
    ctx = ApiContext(
        store=store,
        clock=FakeClock(),
        metrics=Metrics(),
        source_kinds={"fs": ("users", "events"), "td": ("users",)},
        tokens=(TOKEN, "second-token"),
        max_body_bytes=1024,
        on_registered=lambda: woken.append(1),
        deliveries=DeliveryStore(store),
        allow_private_targets=True,
    )
    client = TestClient(TestServer(build_api(ctx)))
    await client.start_server()
    yield client, store, woken
    await client.close()
    await redis.aclose()


@pytest.fixture
async def poller_env(prefix: str):  # type: ignore[no-untyped-def]
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = RedisStore(client, prefix)
    clock = FakeClock()
    http = ScriptedHttp()
    settings = PollSettings(min_interval=2, max_interval=300, max_age=3600, lease=60)
    td = td_provider(store, clock, http)
    sources = {
        "fs": PolledSource("fs", FullStoryProvider("key", FS), rate_limit=0, burst=1),
        "td": PolledSource("td", td, rate_limit=0, burst=1),
    }
    poller = Poller(
        store=store,
        http=http,
        sources=sources,
        settings=settings,
        clock=clock,
        metrics=Metrics(),
        rand=lambda: 0.5,
        durations=DurationStore(store),
    )
    yield store, clock, http, poller
    await client.aclose()


@pytest.fixture
async def deliverer_env(prefix: str) -> AsyncIterator[Env]:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = DeliveryStore(RedisStore(client, prefix))
    await store.ensure_group()
    clock = FakeClock()
    await store.save_subscription(
        Subscription(id="sub_a", url=URL, secrets=((new_secret(), None),))
    )
    sender = ScriptedSender()
    metrics = Metrics()
    settings = DeliverySettings(retry_schedule=[10, 10, 10], disable_after=25)
    deliverer = Deliverer(
        store=store,
        sender=sender,
        settings=settings,
        clock=clock,
        metrics=metrics,
        rand=lambda: 0.5,  # no jitter
    )
    yield Env(store, clock, sender, deliverer, metrics)
    await client.aclose()
