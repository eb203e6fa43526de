"""Configuration: a TOML file, `BRIDGE_…` environment overrides (`__` nests) and a
secrets directory. The only module that reads the environment or config files."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from bridge.delivery import signing
from bridge.delivery.headers import check_headers
from bridge.delivery.targets import TargetPolicy, TargetRefused, check_url, parse_network
from bridge.errors import ConfigError
from bridge.event_types import UnknownEventType, check_pattern
from bridge.metadata import problems as metadata_problems
from bridge.providers.config import DiscoveryFields
from bridge.providers.registry import PLUGINS, SourceConfig
from bridge.sealing import key_id, parse_key
from bridge.sections import Section
from bridge.store.connection import RedisTarget, split_address
from bridge.store.connection import check_url as check_redis_url
from bridge.store.connection import parse_url as parse_redis_url

ENV_PREFIX = "BRIDGE_"


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("listen: must be HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


MIN_TOKEN_CHARS = 16
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class ApiSettings(Section):
    listen: str = "127.0.0.1:8080"
    tokens: list[SecretStr] = Field(default_factory=list)
    # May read events and the pull feed (GET /v1/events…), nothing else.
    read_tokens: list[SecretStr] = Field(default_factory=list)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    # Reverse proxies (CIDRs) whose X-Forwarded-For names the client: failed sign-ins
    # are then counted per client, not for everyone behind the proxy at once.
    trusted_proxies: list[str] = Field(default_factory=list, max_length=100)

    @property
    def host_port(self) -> tuple[str, int]:
        return split_listen(self.listen)

    @model_validator(mode="after")
    def _check_listen(self) -> ApiSettings:
        split_listen(self.listen)
        for entry in self.trusted_proxies:
            if parse_network(entry) is None:
                raise ValueError("trusted_proxies: CIDRs or addresses like 10.0.0.0/8")
        for token in (*self.tokens, *self.read_tokens):
            value = token.get_secret_value()
            if len(value) < MIN_TOKEN_CHARS or not value.isascii() or not value.isprintable():
                raise ValueError(
                    f"tokens: each at least {MIN_TOKEN_CHARS} printable ASCII characters"
                )
            if any(c.isspace() for c in value):
                raise ValueError("tokens: must not hold spaces")
        return self


class PollSettings(Section):
    min_interval: float = Field(default=2.0, gt=0)
    max_interval: float = Field(default=300.0, gt=0)
    max_age: float = Field(default=86400.0, gt=0)
    # Time-to-notice allowed, as a fraction of the job's age (jobs without progress)
    lag_target: float = Field(default=0.1, gt=0, le=1)
    # import.progress (opt-in per subscription): on a status change, and when the done
    # share crosses a step of progress_step, at most one per progress_min_interval s
    progress_step: float = Field(default=0.1, gt=0, le=1)
    progress_min_interval: float = Field(default=30.0, ge=0)
    concurrency: int = Field(default=64, ge=1, le=10_000)
    # Polls one source may have under way in one process; 0: no cap of its own. Either
    # way each source keeps half a fair share of the workers free for itself, so a
    # hanging upstream cannot take the workers another source needs.
    source_concurrency: int = Field(default=0, ge=0, le=10_000)
    request_timeout: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # The upstream body a watch keeps and an event carries (data.job), at most, as JSON
    # bytes; a larger one is replaced by {"omitted": "too_large", "bytes": N}: the watch
    # (rewritten at every poll) and every webhook stay small.
    max_job_bytes: int = Field(default=64 * 1024, ge=0)
    lease: float = Field(default=60.0, gt=0)
    not_found_polls: int = Field(default=3, ge=1)
    tick: float = Field(default=0.2, gt=0, le=10)
    retention: float = Field(default=7 * 86400.0, gt=0)

    @model_validator(mode="after")
    def _check_bounds(self) -> PollSettings:
        if self.max_interval < self.min_interval:
            raise ValueError("max_interval: must be >= min_interval")
        if self.lease <= self.request_timeout:
            raise ValueError("lease: must be longer than request_timeout")
        return self


class DeliverySettings(Section):
    timeout: float = Field(default=15.0, gt=0)
    retry_schedule: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        min_length=1,
    )
    retry_after_cap: float = Field(default=86400.0, gt=0)
    # A claimed delivery's lease is timeout + this; then another replica may resend.
    lease_margin: float = Field(default=30.0, gt=0)
    # SSRF guard: webhook targets must be https and public unless this is set.
    allow_private_targets: bool = False
    # Hosts or CIDRs let through (http allowed too) while the guard stays on for the rest.
    allowed_targets: list[str] = Field(default_factory=list, max_length=1000)
    concurrency: int = Field(default=64, ge=1, le=10_000)
    per_subscription_concurrency: int = Field(default=8, ge=1)
    rotation_grace: float = Field(default=86400.0, ge=0)
    disable_after: float = Field(default=5 * 86400.0, gt=0)
    retention: float = Field(default=7 * 86400.0, gt=0)

    @model_validator(mode="after")
    def _check_schedule(self) -> DeliverySettings:
        if any(d < 0 for d in self.retry_schedule):
            raise ValueError("retry_schedule: seconds >= 0")
        for entry in self.allowed_targets:
            if parse_network(entry) is None and not _HOST_NAME.fullmatch(entry):
                raise ValueError("allowed_targets: host names or CIDRs like 10.1.2.0/24")
        return self

    @property
    def targets(self) -> TargetPolicy:
        return TargetPolicy.build(
            allow_private=self.allow_private_targets, allowed_targets=self.allowed_targets
        )


class HttpSettings(Section):
    # HTTP(S)_PROXY / NO_PROXY from the environment apply to upstream and webhook
    # requests. Off by default: a proxy changes what the SSRF guard can see (README).
    trust_env: bool = False


class StaticSubscription(Section):
    url: str
    secret: SecretStr | None = None
    event_types: list[str] = Field(default_factory=lambda: ["import.*"])
    sources: list[str] = Field(default_factory=list)
    format: Literal["standard", "slack", "discord", "teams"] = "standard"
    headers: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)  # watches whose metadata holds these

    @model_validator(mode="after")
    def _check(self) -> StaticSubscription:
        problems = check_headers(self.headers)
        problems += [f"metadata: {p}" for p in metadata_problems(self.metadata)]
        for i, pattern in enumerate(self.event_types):
            try:
                check_pattern(pattern)
            except UnknownEventType as exc:
                problems.append(f"event_types[{i}]: {exc}")
        if self.secret is not None:
            try:
                signing.check_secret(self.secret.get_secret_value())
            except signing.InvalidSecret as exc:
                problems.append(f"secret: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    redis_url: SecretStr | None = None
    # single: redis_url (or, without it, the embedded Redis); sentinel: the primary the
    # Sentinels name redis_sentinel_master (redis_url, if set, gives its scheme,
    # credentials and database); cluster: redis_url names any one node of a Redis
    # Cluster, the others are found.
    redis_mode: Literal["single", "sentinel", "cluster"] = "single"
    redis_sentinels: list[str] = Field(default_factory=list)
    redis_sentinel_master: str | None = Field(default=None, min_length=1, max_length=200)
    redis_sentinel_password: SecretStr | None = None
    # SIGTERM: work in flight gets this long; the process exits within grace + 2 s.
    shutdown_grace: float = Field(default=10.0, ge=0, le=3600)
    key_prefix: str = Field(default="bridge", pattern=r"^[A-Za-z0-9_.:-]+$")
    # Keys that seal the secrets written to Redis (sealing.py): the first seals, all open
    secrets_keys: list[SecretStr] = Field(default_factory=list, max_length=16)
    api: ApiSettings = Field(default_factory=ApiSettings)
    poll: PollSettings = Field(default_factory=PollSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    subscriptions: list[StaticSubscription] = Field(default_factory=list)

    def _check_redis_mode(self) -> None:
        if self.redis_mode != "sentinel":
            if self.redis_sentinels or self.redis_sentinel_master or self.redis_sentinel_password:
                raise ValueError(
                    "redis_sentinels, redis_sentinel_master and redis_sentinel_password are "
                    'for redis_mode = "sentinel"; set it, or remove them'
                )
            if self.redis_mode == "cluster":
                self._check_cluster_url()
            return
        if self.redis_url is not None and self.redis_url.get_secret_value().startswith("unix:"):
            raise ValueError(
                'redis_url: with redis_mode = "sentinel" the primary is reached over TCP; '
                "give redis:// or rediss:// (for its credentials and database) or none"
            )
        if not self.redis_sentinels:
            raise ValueError(
                'redis_sentinels: redis_mode = "sentinel" needs the Sentinels, e.g. '
                '["10.0.0.5:26379", "10.0.0.6:26379", "10.0.0.7:26379"]'
            )
        for i, entry in enumerate(self.redis_sentinels):
            try:
                split_address(entry)
            except ValueError as exc:
                raise ValueError(f"redis_sentinels[{i}]: {exc}") from None
        if not self.redis_sentinel_master:
            raise ValueError(
                'redis_sentinel_master: redis_mode = "sentinel" needs the name the '
                "Sentinels monitor the primary by (sentinel monitor NAME …)"
            )

    def _check_cluster_url(self) -> None:
        url = self.redis_url.get_secret_value() if self.redis_url else ""
        if not url.startswith(("redis://", "rediss://")):
            raise ValueError(
                'redis_url: redis_mode = "cluster" needs one node of the cluster, '
                "e.g. redis://10.0.0.5:6379 (the others are found from it)"
            )
        try:
            db = int(parse_redis_url(url).get("db") or 0)
        except ValueError:
            return  # not a usable URL: said below, as in every mode
        if urlsplit(url).path.strip("/") not in ("", "0") or db != 0:
            raise ValueError(
                'redis_url: a Redis Cluster has only database 0; remove the "/N" or "?db=N"'
            )

    def redis_target(self) -> RedisTarget | None:
        """Where Redis is; None: start the embedded one."""
        url = self.redis_url.get_secret_value() if self.redis_url else None
        if self.redis_mode == "sentinel":
            password = self.redis_sentinel_password
            return RedisTarget(
                url=url,
                sentinels=tuple(split_address(e) for e in self.redis_sentinels),
                master=self.redis_sentinel_master,
                sentinel_password=password.get_secret_value() if password else None,
            )
        if url is None:
            return None
        return RedisTarget(url=url, cluster=self.redis_mode == "cluster")

    def sealing_keys(self) -> list[bytes]:
        """secrets_keys as key bytes (checked when the settings were read)."""
        return [parse_key(k.get_secret_value()) for k in self.secrets_keys]

    @model_validator(mode="after")
    def _check_source_names(self) -> Settings:
        ids: dict[str, int] = {}
        for i, key in enumerate(self.secrets_keys):
            try:
                ids.setdefault(key_id(parse_key(key.get_secret_value())), i)
            except ValueError as exc:
                raise ValueError(f"secrets_keys[{i}]: {exc}") from None
        if len(ids) < len(self.secrets_keys):
            raise ValueError("secrets_keys: a key is listed twice")
        for name in self.sources:
            if not name or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(f"source name {name!r} may hold only letters, digits, - and _")
        if self.redis_url is not None and not self.redis_url.get_secret_value().startswith(
            REDIS_SCHEMES
        ):
            raise ValueError("redis_url: must start with redis://, rediss:// or unix://")
        self._check_redis_mode()
        if self.redis_url is not None:
            try:  # the client's own reading of it, so that `config check` is `run`'s
                check_redis_url(self.redis_url.get_secret_value())
            except ValueError:
                raise ValueError(
                    "redis_url: not a usable Redis URL (check the host, the port and the "
                    "database number)"
                ) from None
        for name, src in self.sources.items():
            if not isinstance(src, DiscoveryFields) or not src.discover:
                continue
            if src.discover_since > self.poll.retention:
                raise ValueError(
                    f"sources.{name}.discover_since: must not exceed poll.retention "
                    "(a finished import would be found again once its watch expired)"
                )
        policy = self.delivery.targets
        for i, sub in enumerate(self.subscriptions):
            try:
                check_url(sub.url, policy)
            except TargetRefused as exc:
                raise ValueError(f"subscriptions.{i}.url: {exc}") from None
        return self


def load_settings(
    config_path: str | Path | None = None,
    *,
    secrets_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build settings from the file, env and secrets dir; raise ConfigError listing problems."""
    path = Path(config_path) if config_path else _env_path("BRIDGE_CONFIG")
    secrets = Path(secrets_dir) if secrets_dir else _env_path("BRIDGE_SECRETS_DIR")
    if path is not None and not path.is_file():
        raise ConfigError([f"config file {str(path)!r} does not exist"])
    if secrets is not None and not secrets.is_dir():
        raise ConfigError([f"secrets directory {str(secrets)!r} does not exist"])

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(
            toml_file=path,
            **({"secrets_dir": secrets, "secrets_nested_delimiter": "__"} if secrets else {}),
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # Earlier wins: explicit overrides, env, secret files, then the TOML file.
            sources: list[PydanticBaseSettingsSource] = [
                init_settings,
                env_settings,
            ]
            if secrets is not None:
                sources.append(NestedSecretsSettingsSource(file_secret_settings))
            if path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls))
            return tuple(sources)

    try:
        loaded = _FileSettings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except SettingsError as exc:
        raise ConfigError([describe_settings_error(exc, secrets)]) from None
    except (ValueError, OSError) as exc:  # e.g. a TOML syntax error
        raise ConfigError([f"cannot read config: {exc}"]) from None
    return loaded


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem in plain words, naming the key; never echoes the value."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
        msg = _PYDANTIC_PREFIX.sub("", err["msg"])
        if err["type"] == "union_tag_invalid":
            loc.append("provider")
            msg = f"not a known provider (expected one of: {', '.join(PROVIDERS)})"
        elif err["type"] == "union_tag_not_found":
            loc.append("provider")
            msg = f"missing (one of: {', '.join(PROVIDERS)})"
        elif err["type"] == "extra_forbidden":
            msg = "not a known key (a typo?)"
        chunks = msg.split("; ")
        if not all(_KEY_IN_MESSAGE.match(c) for c in chunks):
            chunks = [msg]
        for chunk in chunks:
            key = _KEY_IN_MESSAGE.match(chunk)
            where = list(loc)
            if key:  # a validator that names the key itself: "url: the URL must be https"
                where += key.group(1).split(".")
                chunk = chunk[key.end() :]
            lines.append(f"{_dotted(where) or '(top level)'}: {chunk}{_set_by(where)}")
    return lines


def _set_by(loc: list[str]) -> str:
    """Where the environment set the key (or the section holding it), the variable's
    name: the file may say something else, and the variable is what to fix."""
    upper = {k.upper(): k for k in os.environ}
    for depth in range(len(loc), 0, -1):
        var = ENV_PREFIX + "__".join(p.upper() for p in loc[:depth])
        if var in upper:
            return f" (set by the environment variable {upper[var]})"
    return ""


PROVIDERS = tuple(PLUGINS)
_PYDANTIC_PREFIX = re.compile(r"^(Value error|Assertion failed), ")
_KEY_IN_MESSAGE = re.compile(r"^([a-z_][a-z0-9_]*(?:\[\d+\]|\.[a-z0-9_]+)*): ")


def _dotted(loc: list[str]) -> str:
    """subscriptions.0.url → subscriptions[0].url"""
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


# Top-level keys that are lists: from the environment they are JSON lists, not sections.
TOP_LEVEL_LISTS = ("redis_sentinels", "subscriptions")


def describe_settings_error(exc: Exception, secrets_dir: Path | None = None) -> str:
    """pydantic-settings' own errors (a value from the environment or a secret file that
    is not the JSON its key needs) in plain words, naming where it came from."""
    found = re.search(r'field "([^"]+)" from source "([A-Za-z]+)"', str(exc))
    if not found:
        return f"cannot read config: {str(exc).splitlines()[0][:200]}"
    field, source = found.group(1), found.group(2)
    var = f"{ENV_PREFIX}{field.upper()}"
    where = "environment variable" if source == "EnvSettingsSource" else "secret file"
    if where == "environment variable":
        nested = sorted(k for k in os.environ if k.upper().startswith(var + "__"))
    else:
        files = secrets_dir.iterdir() if secrets_dir and secrets_dir.is_dir() else []
        nested = sorted(p.name.upper() for p in files if p.name.upper().startswith(var + "__"))
    if nested:
        var = nested[0]
    name = var if where == "environment variable" else var.lower()
    if where == "secret file" or nested or field in TOP_LEVEL_LISTS:
        return (
            f"{where} {name}: not valid JSON (lists and tables are JSON there, e.g. "
            f"{ENV_PREFIX}API__TOKENS='[\"a-long-random-token\"]')"
        )
    return (
        f"{where} {name}: not valid JSON (a whole section from the environment is a "
        f"JSON object; to set one key use {var}__KEY)"
    )


def _is_union_tag(part: object) -> bool:
    return part in PROVIDERS or (isinstance(part, str) and part.startswith("function-"))


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
