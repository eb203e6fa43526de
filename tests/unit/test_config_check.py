"""`import-bridge config check` and the small CLI promises: credentials masked, targets
checked as the API checks them, and errors that name what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bridge.cli.main import build_parser, main
from bridge.delivery.sender import WebhookSender
from bridge.delivery.targets import TargetPolicy, TargetRefused, check_url
from bridge.errors import ConfigError
from bridge.settings import load_settings

UNICODE_LOOPBACKS = [
    "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11:8903/hook",  # full-width digits
    "https://127\u30020\u30020\u30021/hook",  # ideographic full stops
    "https://127\uff0e0\uff0e0\uff0e1/hook",  # full-width full stops
]

GENERIC = """
[sources.sf]
provider = "generic"
url = "https://user:url-password-secret@api.example.com/jobs/{job_id}?api_key=url-query-secret"
auth = "header"
auth_header = "X-Api-Key"
secret = "the-header-secret"
headers = { X-Other-Key = "other-secret-value", Accept = "application/json" }
query = { api_key = "query-secret-value" }
status_path = "state"
terminal = { DONE = "completed" }

[[subscriptions]]
url = "https://hooks.slack.com/services/T000/B000/slack-url-secret"
format = "slack"

[[subscriptions]]
url = "https://93.184.215.14/hook?token=query-token-secret"
headers = { Authorization = "Bearer header-token-secret" }
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("url", UNICODE_LOOPBACKS)
def test_an_ip_in_other_digits_or_dots_is_an_ip(url: str) -> None:
    """The host is judged as the HTTP library reads it: a loopback written in full-width
    digits or other dots is refused when saved and when sent."""
    policy = TargetPolicy()
    with pytest.raises(TargetRefused, match="loopback"):
        check_url(url, policy)
    sender = WebhookSender(None, timeout_s=1, policy=policy)  # type: ignore[arg-type]
    assert "loopback" in (sender._refused(url) or "")


@pytest.mark.parametrize("url", UNICODE_LOOPBACKS)
def test_a_static_subscription_is_checked_as_the_api_checks(tmp_path: Path, url: str) -> None:
    """A [[subscriptions]] URL the API would refuse stops the config at load."""
    cfg = tmp_path / "b.toml"
    cfg.write_text(f'[[subscriptions]]\nurl = "{url}"\n')
    with pytest.raises(ConfigError, match=r"subscriptions\[0\]\.url: .*loopback"):
        load_settings(cfg)


def test_config_check_masks_every_credential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Header and query values, subscription headers, incoming-webhook URLs and query
    tokens are masked; their names still show."""
    cfg = tmp_path / "b.toml"
    cfg.write_text(GENERIC)
    code, out, err = run(capsys, "config", "check", str(cfg))
    assert code == 0, err
    for value in ("the-header-secret", "other-secret-value", "query-secret-value",
                  "slack-url-secret", "query-token-secret", "header-token-secret",
                  "url-password-secret", "url-query-secret"):  # fmt: skip
        assert value not in out
    shown = json.loads(out)
    sf = shown["sources"]["sf"]
    assert set(sf["headers"]) == {"X-Other-Key", "Accept"} and set(sf["query"]) == {"api_key"}
    assert shown["subscriptions"][0]["url"].startswith("https://hooks.slack.com/")
    assert list(shown["subscriptions"][1]["headers"]) == ["Authorization"]
    assert shown["subscriptions"][1]["url"].startswith("https://93.184.215.14/hook?token=")
    assert sf["kinds"] == ["job"]  # the default, as it is used
    assert sf["url"] == "https://user:**********@api.example.com/jobs/{job_id}?api_key=**********"


def test_config_check_without_a_file_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --config and no BRIDGE_CONFIG: a warning that only defaults and the
    environment were checked."""
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    code, _, err = run(capsys, "config", "check")
    assert code == 0 and "no config file" in err


def test_an_environment_override_is_named_in_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad value set by a variable names the variable, not only the key."""
    cfg = tmp_path / "b.toml"
    cfg.write_text('[sources.acme]\nprovider = "fullstory"\napi_key = "k"\n')
    monkeypatch.setenv("BRIDGE_SOURCES__ACME__RATE_LIMIT", "fast")
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    [line] = caught.value.problems
    assert "sources.acme.rate_limit" in line and "BRIDGE_SOURCES__ACME__RATE_LIMIT" in line


def test_probe_asks_the_api_named_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`probe` asks BRIDGE_API_URL's /readyz, as every other admin command does."""
    monkeypatch.setenv("BRIDGE_API_URL", "http://10.9.8.7:9999/")
    args = build_parser().parse_args(["probe"])
    assert args.url == "http://10.9.8.7:9999/readyz"


async def test_a_generated_static_secret_is_announced(tmp_path: Path, prefix: str) -> None:
    """A static subscription without a secret gets one generated, never shown: the log
    says so and how to get one a receiver can verify with, without the secret itself."""
    import fakeredis

    from bridge.delivery.static import sync_static_subscriptions
    from bridge.store.deliveries import DeliveryStore
    from bridge.store.redis import RedisStore

    cfg = tmp_path / "b.toml"
    cfg.write_text('[[subscriptions]]\nurl = "https://hooks.example.com/x"\n')
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = DeliveryStore(RedisStore(client, prefix))
    with capture_logs() as logs:
        await sync_static_subscriptions(store, load_settings(cfg), 0.0)
        await sync_static_subscriptions(store, load_settings(cfg), 1.0)  # once only
    [line] = [entry for entry in logs if entry["event"] == "static_subscription_secret_generated"]
    [sub] = await store.list_subscriptions()
    assert "rotate" in line["message"] and sub.secrets[0][0] not in str(line)
    await client.aclose()


def test_config_check_resolves_subscription_hosts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the API does: a name that resolves to a loopback address is refused; one that
    does not resolve from here is a warning (it may where the bridge runs)."""
    cfg = tmp_path / "b.toml"
    cfg.write_text('[[subscriptions]]\nurl = "https://localhost/hook"\n')
    code, _, err = run(capsys, "config", "check", str(cfg))
    assert code == 1 and "subscriptions[0].url: localhost resolves to a loopback" in err
    cfg.write_text('[[subscriptions]]\nurl = "https://nowhere.invalid/hook"\n')
    code, _, err = run(capsys, "config", "check", str(cfg))
    assert code == 0 and "warning: subscriptions[0].url: cannot resolve" in err
