"""Configuration: a TOML file, `BRIDGE_…` environment overrides (`__` nests) and a
secrets directory. The only module that reads the environment or config files."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
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
from bridge.providers.jsonpath import BadPath, parse_path
from bridge.store.connection import check_url as check_redis_url

ENV_PREFIX = "BRIDGE_"


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("listen: must be HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def check_http_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")


MIN_TOKEN_CHARS = 16
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSettings(_Section):
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


class PollSettings(_Section):
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
    # The upstream body an event carries (data.job), at most, as JSON bytes; a larger
    # one is replaced by {"omitted": "too_large", "bytes": N}: a webhook stays small.
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


class DeliverySettings(_Section):
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


class HttpSettings(_Section):
    # HTTP(S)_PROXY / NO_PROXY from the environment apply to upstream and webhook
    # requests. Off by default: a proxy changes what the SSRF guard can see (README).
    trust_env: bool = False


class StaticSubscription(_Section):
    url: str
    secret: SecretStr | None = None
    event_types: list[str] = Field(default_factory=lambda: ["import.*"])
    sources: list[str] = Field(default_factory=list)
    format: Literal["standard", "slack", "discord", "teams"] = "standard"
    headers: dict[str, str] = Field(default_factory=dict)
    description: str | None = None

    @model_validator(mode="after")
    def _check(self) -> StaticSubscription:
        problems = check_headers(self.headers)
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


class _SourceBase(_Section):
    # 0 turns the limiter off (benchmarks against a local simulator only).
    rate_limit: float = Field(default=5.0, ge=0)
    # Requests allowed back to back; 1 spaces them evenly. Never above rate_limit.
    burst: int = Field(default=1, ge=1)
    base_url: str | None = None

    @model_validator(mode="after")
    def _check_burst(self) -> _SourceBase:
        if self.rate_limit and self.burst > max(1.0, self.rate_limit):
            raise ValueError("burst: must not exceed rate_limit")
        if self.base_url is not None:
            try:
                check_http_url(self.base_url)
            except ValueError as exc:
                raise ValueError(f"base_url: {exc}") from None
        return self


class FullStorySource(_SourceBase):
    provider: Literal["fullstory"]
    api_key: SecretStr
    # Attach the first page of GET …/batch/{job_id}/errors to import.failed.
    errors_sample: bool = False


class TalkdeskSource(_SourceBase):
    provider: Literal["talkdesk"]
    account: str = Field(min_length=1, pattern=r"^[A-Za-z0-9-]+$")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    region: Literal["us", "eu", "ca"] = "us"
    token_url: str | None = None
    # Watch every new import from the list endpoint (HAL, newest first), within the
    # source's rate budget; idempotent across replicas.
    discover: bool = False
    discover_since: float = Field(default=86400.0, gt=0)  # backfill window, seconds
    discover_interval: float = Field(default=30.0, ge=1)  # between two looks at the list
    # Jobs discovery may watch for this source within poll.max_age: a list whose ids
    # change at every look cannot grow the store without end (beyond: counted, logged).
    discover_max_watches: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _check_token_url(self) -> TalkdeskSource:
        if self.token_url is not None:
            try:
                check_http_url(self.token_url)
            except ValueError as exc:
                raise ValueError(f"token_url: {exc}") from None
        return self


TerminalOutcome = Literal["completed", "completed_with_errors", "failed", "canceled"]
_NEEDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "bearer": ("token",),
    "basic": ("username", "password"),
    "header": ("auth_header", "secret"),
    "oauth2": ("token_url", "client_id", "client_secret"),
}


GENERIC_DEFAULT_KIND = "job"  # a generic source's kind when its url has no {kind}


class GenericSource(_SourceBase):
    """Any job API, described here (providers/generic.py)."""

    provider: Literal["generic"]
    url: str  # with {job_id}, and {kind} when kinds are given
    kinds: list[str] = Field(default_factory=list)
    auth: Literal["none", "bearer", "basic", "header", "oauth2"] = "none"
    token: SecretStr | None = None
    auth_header: str | None = None
    secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scope: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    status_path: str
    terminal: dict[str, TerminalOutcome] = Field(min_length=1)
    total_path: str | None = None
    succeeded_path: str | None = None
    failed_path: str | None = None
    finished_path: str | None = None
    created_path: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_kind(cls, data: Any) -> Any:
        """The kind a source polls when none are named, shown as it is (config check)."""
        if (
            isinstance(data, dict)
            and not data.get("kinds")
            and "{kind}" not in str(data.get("url"))
        ):
            return {**data, "kinds": [GENERIC_DEFAULT_KIND]}
        return data

    @model_validator(mode="after")
    def _check_generic(self) -> GenericSource:
        problems = []
        if "{job_id}" not in self.url:
            problems.append("url: must hold {job_id}")
        unknown = sorted(set(re.findall(r"\{([^{}]*)\}", self.url)) - {"job_id", "kind"})
        if unknown:
            names = ", ".join("{" + u + "}" for u in unknown)
            problems.append(f"url: {names} is not a placeholder (only {{job_id}} and {{kind}})")
        try:
            check_http_url(self.url)
        except ValueError as exc:
            problems.append(f"url: {exc}")
        if "{kind}" in self.url and not self.kinds:
            problems.append("kinds: the url holds {kind}: name the kinds, the first the default")
        for kind in self.kinds:
            if not kind or not all(c.isalnum() or c in "-_." for c in kind):
                problems.append("kinds: letters, digits, -, _ and . only")
        for key in _NEEDS[self.auth]:
            if getattr(self, key) is None:
                problems.append(f"{key}: required with auth = {self.auth!r}")
        if self.token_url is not None:
            try:
                check_http_url(self.token_url)
            except ValueError as exc:
                problems.append(f"token_url: {exc}")
        for key in ("status_path", "total_path", "succeeded_path", "failed_path",
                    "finished_path", "created_path"):  # fmt: skip
            path = getattr(self, key)
            if path is not None:
                try:
                    parse_path(path)
                except BadPath as exc:
                    problems.append(f"{key}: {exc}")
        problems += [f"headers: {p}" for p in check_headers(self.headers)]
        if self.auth_header is not None:
            problems += [f"auth_header: {p}" for p in check_headers({self.auth_header: "x"})]
        for key in ("token", "secret", "password", "client_secret"):
            value = getattr(self, key)
            if value is not None and not value.get_secret_value().isprintable():
                problems.append(f"{key}: control characters are not allowed")
        if self.auth != "none" and any(h.lower() == "authorization" for h in self.headers):
            problems.append("headers: Authorization comes from auth; do not set it here too")
        if problems:
            raise ValueError("; ".join(problems))
        return self


SourceSettings = Annotated[
    FullStorySource | TalkdeskSource | GenericSource, Field(discriminator="provider")
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    redis_url: SecretStr | None = None
    # SIGTERM: work in flight gets this long; the process exits within grace + 2 s.
    shutdown_grace: float = Field(default=10.0, ge=0, le=3600)
    key_prefix: str = Field(default="bridge", pattern=r"^[A-Za-z0-9_.:-]+$")
    api: ApiSettings = Field(default_factory=ApiSettings)
    poll: PollSettings = Field(default_factory=PollSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    subscriptions: list[StaticSubscription] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_source_names(self) -> Settings:
        for name in self.sources:
            if not name or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(f"source name {name!r} may hold only letters, digits, - and _")
        if self.redis_url is not None and not self.redis_url.get_secret_value().startswith(
            REDIS_SCHEMES
        ):
            raise ValueError("redis_url: must start with redis://, rediss:// or unix://")
        if self.redis_url is not None:
            try:  # the client's own reading of it, so that `config check` is `run`'s
                check_redis_url(self.redis_url.get_secret_value())
            except ValueError:
                raise ValueError(
                    "redis_url: not a usable Redis URL (check the host, the port and the "
                    "database number)"
                ) from None
        for name, src in self.sources.items():
            if not isinstance(src, TalkdeskSource) or not src.discover:
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


PROVIDERS = ("fullstory", "talkdesk", "generic")
_PYDANTIC_PREFIX = re.compile(r"^(Value error|Assertion failed), ")
_KEY_IN_MESSAGE = re.compile(r"^([a-z_][a-z0-9_]*(?:\[\d+\]|\.[a-z0-9_]+)*): ")


def _dotted(loc: list[str]) -> str:
    """subscriptions.0.url → subscriptions[0].url"""
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


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
    if where == "secret file" or nested:
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
