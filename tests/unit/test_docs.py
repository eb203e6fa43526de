"""The docs match the code: every setting is in the example config and the README."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel

from bridge.providers.fullstory import FullStorySource
from bridge.providers.generic import GenericSource
from bridge.providers.talkdesk import TalkdeskSource
from bridge.settings import (
    ApiSettings,
    DeliverySettings,
    HttpSettings,
    PollSettings,
    Settings,
    StaticSubscription,
)

ROOT = Path(__file__).parents[2]


def _names(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_example_config_shows_every_setting() -> None:
    """config/bridge.example.toml names every api and poll key and each source kind's keys."""
    text = (ROOT / "config" / "bridge.example.toml").read_text()
    example = tomllib.loads(text)
    assert _names(ApiSettings) <= set(example["api"])
    assert _names(PollSettings) <= set(example["poll"])
    assert _names(DeliverySettings) <= set(example["delivery"])
    for name in _names(StaticSubscription):
        assert f"# {name} = " in text, name
    for name in ("redis_url", "key_prefix"):
        assert name in text
    sources = example["sources"]
    fs = next(s for s in sources.values() if s["provider"] == "fullstory")
    td = next(s for s in sources.values() if s["provider"] == "talkdesk")
    assert _names(FullStorySource) <= set(fs)
    assert _names(TalkdeskSource) <= set(td)


def test_readme_documents_every_setting() -> None:
    """The README's configuration table has a row for every key."""
    readme = (ROOT / "README.md").read_text()
    for name in _names(Settings) - {"api", "poll", "delivery", "sources", "subscriptions"}:
        assert f"`{name}`" in readme, name
    for section, model in (
        ("api", ApiSettings),
        ("poll", PollSettings),
        ("delivery", DeliverySettings),
    ):
        for name in _names(model):
            assert f"`{section}.{name}`" in readme, f"{section}.{name}"
    for model in (FullStorySource, TalkdeskSource, GenericSource):
        for name in _names(model):
            assert f"sources.NAME.{name}" in readme or f"`{name}`" in readme, name
    for name in _names(StaticSubscription):
        assert f"`subscriptions[].{name}`" in readme, name


def test_readme_documents_every_command() -> None:
    """Each command and action of the CLI has its row in the README's command table."""
    import argparse

    from bridge.cli.main import build_parser

    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `import-bridge ")]

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    for command, parser in subcommands(build_parser()).items():
        mine = [row for row in rows if row.startswith(f"| `import-bridge {command}")]
        assert mine, command
        for action in subcommands(parser):
            assert any(f"{action} " in row or f"{action}`" in row for row in mine), (
                f"{command} {action}"
            )


def test_readme_config_table_matches_defaults_and_env_names() -> None:
    """Each row's env name is the key's, and a default shown in the table is the code's."""
    import json
    import re

    readme = (ROOT / "README.md").read_text()
    models: dict[str, type[BaseModel]] = {
        "api": ApiSettings,
        "poll": PollSettings,
        "delivery": DeliverySettings,
        "http": HttpSettings,
    }
    row = re.compile(r"^\| `([a-z_]+)\.([a-z_]+)` \| `([A-Z_]+)` \| `([^`]*)` \|", re.M)
    checked = 0
    for section, name, env, default in row.findall(readme):
        if section not in models:
            continue
        assert env == f"BRIDGE_{section.upper()}__{name.upper()}", env
        field = models[section].model_fields[name]
        value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        try:
            shown = json.loads(default)
        except ValueError:
            shown = default
        assert shown == value, f"{section}.{name}: README {default}, code {value!r}"
        checked += 1
    assert checked >= sum(len(m.model_fields) for m in models.values())
