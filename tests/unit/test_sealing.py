"""Secrets sealed at rest (AES-256-GCM): the policy, the stored forms, the settings."""

from __future__ import annotations

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import ConfigError
from bridge.model import Subscription
from bridge.sealing import Sealer, SealError, key_id, new_key, parse_key
from bridge.settings import load_settings
from bridge.store.delivery_codec import sub_from_json, sub_to_json
from bridge.store.redis import RedisStore

K1, K2 = parse_key(new_key()), parse_key(new_key())


@given(st.text(max_size=300), st.text(min_size=1, max_size=40))
def test_what_is_sealed_opens_as_what_it_was_and_shows_nothing_of_it(value: str, what: str) -> None:
    sealer = Sealer([K1])
    sealed = sealer.seal(value, what)
    assert sealed.startswith(f"sealed:1:{key_id(K1)}:")
    assert sealer.open(sealed, what) == value
    if len(value) >= 4:
        assert value not in sealed.split(":", 3)[3]
    assert sealer.seal(value, what) != sealed or value == ""  # a fresh nonce each time


def test_the_first_key_seals_and_every_key_opens() -> None:
    old = Sealer([K1]).seal("whsec_x", "s")
    both = Sealer([K2, K1])
    assert both.open(old, "s") == "whsec_x" and not both.is_current(old)
    assert both.is_current(both.seal("whsec_x", "s"))
    assert Sealer([K2]).is_current("anything") is False  # clear: not sealed yet
    assert Sealer().is_current("anything")  # without keys, clear is as it should be


def test_a_value_opens_only_as_what_it_was_sealed_as() -> None:
    sealed = Sealer([K1]).seal("whsec_x", "subscription secret sub_a")
    with pytest.raises(SealError, match="does not open"):
        Sealer([K1]).open(sealed, "subscription secret sub_b")


def test_a_missing_key_names_its_id_and_never_the_value() -> None:
    sealed = Sealer([K1]).seal("whsec_topsecret", "s")
    with pytest.raises(SealError) as raised:
        Sealer([K2]).open(sealed, "s")
    message = str(raised.value)
    assert key_id(K1) in message and key_id(K2) in message and "topsecret" not in message
    assert Sealer([K2]).open("whsec_clear", "s") == "whsec_clear"  # from before keys


def test_a_subscriptions_secrets_and_header_values_are_stored_sealed() -> None:
    sub = Subscription(
        id="sub_a", url="https://h.example/x", secrets=(("whsec_abcdef", None),),
        headers=(("X-Api-Key", "k-secret"),),
    )  # fmt: skip
    sealer = Sealer([K1])
    stored = sub_to_json(sub, sealer)
    assert "whsec_abcdef" not in stored and "k-secret" not in stored and "X-Api-Key" in stored
    assert sub_from_json(stored, sealer) == sub
    moved = stored.replace('"id":"sub_a"', '"id":"sub_b"')  # to another subscription
    with pytest.raises(SealError):
        sub_from_json(moved, sealer)
    assert sub_from_json(sub_to_json(sub), Sealer([K1])) == sub  # stored in clear before


async def test_access_tokens_are_cached_sealed(prefix: str) -> None:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = RedisStore(redis, prefix, sealer=Sealer([K1]))
    await store.sources.set_token("td", "tok-123", 60)
    raw = await redis.get(store.keys.source_token("td"))
    assert raw.startswith("sealed:1:") and "tok-123" not in raw
    assert (await store.sources.get_token("td"))[0] == "tok-123"  # type: ignore[index]
    assert not await store.sources.drop_token("td", "another")  # not the one stored
    assert await store.sources.drop_token("td", "tok-123")
    await redis.set(store.keys.source_token("td"), "tok-clear", px=60_000)  # from before
    rotated = RedisStore(redis, prefix, sealer=Sealer([K2, K1]))
    assert await rotated.sources.reseal_token("td")
    assert Sealer([K2]).is_current(await redis.get(store.keys.source_token("td")))
    assert 0 < await redis.pttl(store.keys.source_token("td")) <= 60_000  # kept its TTL
    other = RedisStore(redis, prefix, sealer=Sealer([K1]))
    assert await other.sources.get_token("td") is None  # cannot open: fetched again


def test_keys_are_checked_when_the_config_is_read(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "b.toml"
    cfg.write_text(f'secrets_keys = ["{new_key()}", "not-a-key-at-all"]\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(cfg)
    text = " ".join(raised.value.problems)
    assert "secrets_keys[1]" in text and "32 random bytes" in text and "not-a-key" not in text
    key = new_key()
    cfg.write_text(f'secrets_keys = ["{key}", "{key}"]\n')
    with pytest.raises(ConfigError, match="listed twice"):
        load_settings(cfg)
    monkeypatch.setenv("BRIDGE_SECRETS_KEYS", f'["{key}"]')
    cfg.write_text("")
    assert load_settings(cfg).sealing_keys() == [parse_key(key)]


def test_a_value_that_looks_sealed_is_sealed_all_the_same_and_echoed_never() -> None:
    sealer = Sealer([K1])
    looks = "sealed:1:hunter2:whatever"
    sealed = sealer.seal(looks, "h")
    assert sealed != looks and sealer.open(sealed, "h") == looks
    with pytest.raises(SealError) as raised:
        sealer.open(looks, "h")  # stored in clear before keys: not a value of ours
    assert "hunter2" not in str(raised.value)


def test_a_header_value_is_bound_to_its_header_name() -> None:
    sub = Subscription(id="sub_a", url="https://h.example/x", secrets=(("whsec_abcdef", None),),
                       headers=(("Authorization", "Bearer a"), ("X-Trace", "t")))  # fmt: skip
    sealer = Sealer([K1])
    import orjson

    doc = orjson.loads(sub_to_json(sub, sealer))
    doc["headers"][1][1], doc["headers"][0][1] = doc["headers"][0][1], doc["headers"][1][1]
    with pytest.raises(SealError):
        sub_from_json(orjson.dumps(doc).decode(), sealer)


async def test_one_subscription_no_key_here_opens_holds_back_only_itself(prefix: str) -> None:
    """Another replica sealed it with a key this one lacks: it is listed (without its
    secrets) and matched, the others are served as ever, and it is never written
    back without its secrets."""
    from bridge.store.deliveries import DeliveryStore

    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    theirs = DeliveryStore(RedisStore(redis, prefix, sealer=Sealer([K2])))
    ours = DeliveryStore(RedisStore(redis, prefix, sealer=Sealer([K1])))
    a = Subscription(id="sub_a", url="https://h.example/a", secrets=(("whsec_aaaaaa", None),))
    b = Subscription(id="sub_b", url="https://h.example/b", secrets=(("whsec_bbbbbb", None),))
    await theirs.save_subscription(a)
    await ours.save_subscription(b)
    listed = {s.id: s for s in await ours.list_subscriptions()}
    assert listed["sub_b"].secrets == b.secrets and listed["sub_a"].secrets == ()
    assert ours.unreadable == {"sub_a"}
    with pytest.raises(SealError):
        await ours.save_subscription(listed["sub_a"])
    assert (await theirs.get_subscription("sub_a")).secrets == a.secrets  # type: ignore[union-attr]


def test_the_embedded_redis_keeps_its_key_and_it_opens_beside_configured_ones(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    from bridge.store.embedded import EmbeddedRedis, EmbeddedRedisError

    redis = EmbeddedRedis(tmp_path / "data")
    (own,) = redis.sealing_keys([])
    assert redis.sealing_keys([]) == [own]  # the same file, read again
    assert ((tmp_path / "data" / "secrets.key").stat().st_mode & 0o777) == 0o600
    assert redis.sealing_keys([K1]) == [K1, own]  # what it sealed still opens
    assert EmbeddedRedis(tmp_path / "other").sealing_keys([K1]) == [K1]  # no file: none made
    (tmp_path / "data" / "secrets.key").chmod(0o644)
    with pytest.raises(EmbeddedRedisError, match="chmod 600"):
        redis.sealing_keys([])
