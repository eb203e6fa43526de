"""Sources defined at run time through the admin API: checked by the config file's own
model and rules, stored whole (sealed: they hold credentials), shown without their
secrets. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import SecretStr, TypeAdapter

from bridge.providers.config import DiscoveryFields, SourceBase
from bridge.providers.registry import SourceConfig

NAME_CHARS = "-_"
MAX_NAME = 100
_ADAPTER: TypeAdapter[Any] = TypeAdapter(SourceConfig)


def name_problem(name: str) -> str | None:
    """Why this is no source name, or None (the config file's rule)."""
    if (
        not name
        or len(name) > MAX_NAME
        or not all(c.isascii() and (c.isalnum() or c in NAME_CHARS) for c in name)
    ):
        return f"a source name is 1 to {MAX_NAME} letters, digits, - and _"
    return None


def rule_problems(name: str, cfg: SourceBase, retention_s: float) -> list[str]:
    """What the config file checks across sections, for one source."""
    if isinstance(cfg, DiscoveryFields) and cfg.discover and cfg.discover_since > retention_s:
        return [
            f"sources.{name}.discover_since: must not exceed poll.retention "
            "(a finished import would be found again once its watch expired)"
        ]
    return []


def parse_source(fields: Mapping[str, Any]) -> SourceBase:
    """The keys of a [sources.NAME] table as a source's config (pydantic's
    ValidationError when they are not one)."""
    cfg: SourceBase = _ADAPTER.validate_python(dict(fields))
    return cfg


def source_doc(cfg: SourceBase) -> str:
    """The keys given, as JSON, secrets in clear (the store seals the whole document).
    Defaults are left out: a version with more keys reads it, and a change starts
    from what was given."""
    return orjson.dumps(_plain(cfg.model_dump(mode="python", exclude_unset=True))).decode()


def secret_keys(cfg: SourceBase) -> list[str]:
    """The top-level keys that hold a secret (anywhere within them)."""
    dumped = cfg.model_dump(mode="python")
    return sorted(k for k, v in dumped.items() if _holds_secret(v))


def where_credentials_go(key: str) -> bool:
    """A key whose change may send the source's credentials to another host."""
    return key.endswith("url") or key in ("region", "account", "provider")


def source_from_doc(text: str) -> SourceBase:
    return parse_source(orjson.loads(text))


def source_view(name: str, cfg: SourceBase, *, static: bool) -> dict[str, Any]:
    """A source as the API shows it: every secret as `**********` (set), never its
    value; header and query values too (they often carry a key)."""
    view = {"name": name, "static": static, **cfg.model_dump(mode="json")}
    for key in ("headers", "query"):
        if isinstance(view.get(key), dict):
            view[key] = dict.fromkeys(view[key], MASK)
    return view


MASK = "**********"


def _holds_secret(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return True
    if isinstance(value, dict):
        return any(_holds_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_secret(v) for v in value)
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
