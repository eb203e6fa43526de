"""Configuration: TOML, env overrides, secret files and one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.providers.fullstory import FullStorySource
from bridge.providers.talkdesk import TalkdeskSource
from bridge.settings import load_settings

GOOD = """
redis_url = "redis://localhost:6379/0"
[api]
tokens = ["t1-long-enough-token"]
[sources.fs]
provider = "fullstory"
api_key = "na1.key"
[sources.td]
provider = "talkdesk"
account = "acme"
client_id = "cid"
client_secret = "from-file"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(GOOD)
    return path


def test_loads_file(config: Path) -> None:
    """A valid file gives typed sources with secrets hidden."""
    s = load_settings(config)
    assert isinstance(s.sources["fs"], FullStorySource)
    td = s.sources["td"]
    assert isinstance(td, TalkdeskSource) and td.client_secret.get_secret_value() == "from-file"
    assert "from-file" not in repr(s) and "na1.key" not in repr(s)


def test_env_overrides_nested_keys(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BRIDGE_SOURCES__TD__CLIENT_SECRET overrides the file; BRIDGE_POLL__… too."""
    monkeypatch.setenv("BRIDGE_SOURCES__TD__CLIENT_SECRET", "from-env")
    monkeypatch.setenv("BRIDGE_POLL__MIN_INTERVAL", "0.5")
    s = load_settings(config)
    td = s.sources["td"]
    assert isinstance(td, TalkdeskSource) and td.client_secret.get_secret_value() == "from-env"
    assert s.poll.min_interval == 0.5


def test_secrets_dir(config: Path, tmp_path: Path) -> None:
    """A file named bridge_sources__fs__api_key in the secrets dir supplies that secret."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "bridge_sources__fs__api_key").write_text("eu1.secret-file")
    s = load_settings(config, secrets_dir=secrets)
    fs = s.sources["fs"]
    assert isinstance(fs, FullStorySource) and fs.api_key.get_secret_value() == "eu1.secret-file"


def test_every_problem_named_once(tmp_path: Path) -> None:
    """Each problem is one line naming its key, and no secret value is echoed."""
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[poll]
min_interval = -1
concurrency = "lots"
[sources.fs]
provider = "fullstory"
api_key = "na1.must-not-leak"
rate_limit = "fast"
[sources.x]
provider = "nope"
"""
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    problems = info.value.problems
    text = "\n".join(problems)
    assert any(p.startswith("poll.min_interval:") for p in problems)
    assert any(p.startswith("poll.concurrency:") for p in problems)
    assert any(p.startswith("sources.fs.rate_limit:") for p in problems)
    assert (
        "sources.x.provider: not a known provider (expected one of: fullstory, talkdesk, generic)"
        in (problems)
    )
    assert "must-not-leak" not in text
    assert not any("Input tag" in p or "Value error" in p for p in problems)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[[subscriptions]]\nurl = "not a url"\n', "subscriptions[0].url: not a URL"),
        ('[[subscriptions]]\nurl = "https://10.9.8.7/x"\n', "points to a private address"),
        ("[api]\ntokenz = 1\n", "api.tokenz: not a known key"),
        ('[sources.g]\napi_key = "k"\n', "sources.g.provider: missing"),
        (
            '[sources.f]\nprovider = "fullstory"\napi_key = "k"\nrate_limit = 1\nburst = 3\n',
            "sources.f.burst: must not exceed rate_limit",
        ),
        ('[api]\nlisten = "nowhere-secret"\n', "api.listen: must be HOST:PORT"),
        ('[api]\ntokens = ["with space in-it-0123"]\n', "api.tokens: must not hold spaces"),
        ("[poll]\nmin_interval = 5\nmax_interval = 1\n", "poll.max_interval: must be >="),
        ('redis_url = "http://secret-host"\n', "redis_url: must start with redis://"),
        ('redis_url = "redis://secret-host:notaport/0"\n', "redis_url: not a usable Redis URL"),
        ('redis_url = "redis://secret-host:99999/0"\n', "redis_url: not a usable Redis URL"),
        ('redis_url = "redis://:secret-pw@[bad"\n', "redis_url: not a usable Redis URL"),
        ('redis_mode = "sentinel"\n', 'redis_sentinels: redis_mode = "sentinel" needs'),
        (
            'redis_mode = "sentinel"\nredis_sentinels = ["nowhere-secret"]\n',
            "redis_sentinels[0]: not HOST:PORT",
        ),
        (
            'redis_mode = "sentinel"\nredis_sentinels = ["h:26379"]\n',
            'redis_sentinel_master: redis_mode = "sentinel" needs the name',
        ),
        ('redis_sentinels = ["h:26379"]\n', 'are for redis_mode = "sentinel"'),
        ('redis_mode = "cluster"\n', 'redis_url: redis_mode = "cluster" needs one node'),
        (
            'redis_mode = "cluster"\nredis_url = "unix:///secret-host/redis.sock"\n',
            'redis_url: redis_mode = "cluster" needs one node',
        ),
        (
            'redis_mode = "cluster"\nredis_url = "redis://secret-host:7000/3"\n',
            "redis_url: a Redis Cluster has only database 0",
        ),
        (
            'redis_mode = "cluster"\nredis_url = "redis://secret-host:7000?db=2"\n',
            "redis_url: a Redis Cluster has only database 0",
        ),
        (
            'redis_mode = "cluster"\nredis_url = "redis://secret-host:nope"\n',
            "redis_url: not a usable Redis URL",
        ),
        (
            'redis_mode = "cluster"\nredis_url = "redis://h:1"\nredis_sentinels = ["h:2"]\n',
            'are for redis_mode = "sentinel"',
        ),
        ('redis_mode = "shards"\n', "redis_mode: Input should be 'single', 'sentinel' or"),
        ('redis_sentinel_password = "secret-pw"\n', 'are for redis_mode = "sentinel"'),
        (
            'redis_mode = "sentinel"\nredis_sentinels = ["h:1"]\nredis_sentinel_master = "m"\n'
            'redis_url = "unix:///secret-host/redis.sock"\n',
            'redis_url: with redis_mode = "sentinel" the primary is reached over TCP',
        ),
        (
            '[sources.f]\nprovider = "fullstory"\napi_key = "k"\nbase_url = "ftp://h"\n',
            "sources.f.base_url: must be an http(s) URL",
        ),
        (
            '[[subscriptions]]\nurl = "https://h.example.com"\nevent_types = ["import.complete"]\n',
            "subscriptions[0].event_types[0]: not a known event type or pattern; did you mean",
        ),
    ],
)
def test_config_errors_in_plain_words(tmp_path: Path, toml: str, expected: str) -> None:
    """Each mistake is one line that names the key in plain words and does not echo
    the value (no pydantic jargon)."""
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    [line] = info.value.problems
    assert expected in line
    assert "10.9.8.7" not in line and "nowhere-secret" not in line and "Value error" not in line


def test_a_section_in_the_environment_that_is_not_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BRIDGE_API='{bad' names the variable and says how to set one key."""
    monkeypatch.setenv("BRIDGE_API", "{bad")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    [line] = info.value.problems
    assert line.startswith("environment variable BRIDGE_API: not valid JSON")
    assert "BRIDGE_API__KEY" in line and "EnvSettingsSource" not in line


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    """A missing file or a TOML syntax error is one clear line."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[api\nlisten=")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(broken)


def test_example_config_loads() -> None:
    """The shipped example config is valid."""
    example = Path(__file__).parents[2] / "config" / "bridge.example.toml"
    s = load_settings(example)
    assert s.sources


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[api]\ntokens = [""]\n', "api"),
        ('[api]\ntokens = ["   "]\n', "api"),
        ('[api]\ntokens = ["short"]\n', "api"),
        ('[api]\ntokens = ["has a space in the middle ok"]\n', "api"),
        ('redis_url = "http://localhost:6379"\n', "redis_url"),
        ('[delivery]\nallowed_targets = ["not a host"]\n', "allowed_targets"),
        ('[[subscriptions]]\nurl = "https://127.0.0.1/h"\n', "subscriptions[0].url"),
        (
            '[[subscriptions]]\nurl = "https://h.example/h"\nheaders = {"Transfer-Encoding" = "x"}\n',
            "Transfer-Encoding",
        ),
        ('[[subscriptions]]\nurl = "https://h.example/h"\nsecret = "whsec_short"\n', "secret"),
    ],
)
def test_refused_at_load(tmp_path: Path, text: str, key: str) -> None:
    """Weak tokens, non-Redis URLs, bad allowed targets and bad static subscriptions
    fail at load, naming the key and never echoing the value."""
    path = tmp_path / "bridge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = "; ".join(info.value.problems)
    assert key in message
    assert "has a space" not in message and "whsec_short" not in message


def test_allowed_targets_and_a_long_token_load(tmp_path: Path) -> None:
    """Hosts and CIDRs are accepted; a private target named there passes the guard."""
    path = tmp_path / "bridge.toml"
    path.write_text(
        '[api]\ntokens = ["a-long-enough-token-123"]\n'
        '[delivery]\nallowed_targets = ["10.1.2.0/24", "hooks.internal"]\n'
        '[[subscriptions]]\nurl = "http://10.1.2.9:8080/h"\n'
    )
    s = load_settings(path)
    assert s.delivery.targets.refused("10.1.2.9") is None


def test_a_list_in_the_environment_or_a_secret_file_that_is_not_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BRIDGE_API__TOKENS=plain, or a secret file holding a plain token, names the
    variable or the file and shows the JSON it needs."""
    monkeypatch.setenv("BRIDGE_API__TOKENS", "plain")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    [line] = info.value.problems
    assert line.startswith("environment variable BRIDGE_API__TOKENS: not valid JSON")
    monkeypatch.delenv("BRIDGE_API__TOKENS")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "bridge_api__tokens").write_text("plain-token-0123456789")
    with pytest.raises(ConfigError) as info:
        load_settings(None, secrets_dir=secrets)
    [line] = info.value.problems
    assert line.startswith("secret file bridge_api__tokens: not valid JSON")
    assert "plain-token" not in line


def test_a_top_level_list_in_the_environment_is_shown_as_a_json_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_REDIS_SENTINELS", "10.0.0.5:26379")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    [line] = info.value.problems
    assert line.startswith("environment variable BRIDGE_REDIS_SENTINELS: not valid JSON")
    assert "lists and tables are JSON there" in line and "__KEY" not in line


def test_sentinel_mode_names_the_primary_by_the_sentinels(tmp_path: Path) -> None:
    """The Sentinels and the primary's name; redis_url, when set, gives the primary's
    scheme, credentials and database; the Sentinels' password comes from a secret."""
    path = tmp_path / "c.toml"
    path.write_text(
        'redis_mode = "sentinel"\n'
        'redis_sentinels = ["10.0.0.5:26379", "[fd00::6]:26380"]\n'
        'redis_sentinel_master = "mymaster"\n'
        'redis_url = "rediss://app:pw@ignored/2"\n'
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "bridge_redis_sentinel_password").write_text("from-a-secret")
    target = load_settings(path, secrets_dir=secrets).redis_target()
    assert target is not None and target.mode == "sentinel"
    assert target.sentinels == (("10.0.0.5", 26379), ("fd00::6", 26380))
    assert target.master == "mymaster"
    assert target.url == "rediss://app:pw@ignored/2"
    assert target.sentinel_password == "from-a-secret"


def test_cluster_mode_names_one_node(tmp_path: Path) -> None:
    """One node's URL (TLS and an ACL user included); the others are found from it."""
    path = tmp_path / "c.toml"
    path.write_text('redis_mode = "cluster"\nredis_url = "rediss://app:pw@10.0.0.5:7000"\n')
    target = load_settings(path).redis_target()
    assert target is not None and target.mode == "cluster"
    assert target.url == "rediss://app:pw@10.0.0.5:7000"


def test_single_mode_without_a_url_is_the_embedded_redis(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("")
    assert load_settings(path).redis_target() is None
    path.write_text('redis_url = "redis://h:6379/0"\n')
    target = load_settings(path).redis_target()
    assert target is not None and target.mode == "single" and target.url == "redis://h:6379/0"
