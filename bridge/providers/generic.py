"""The generic provider: any job API described in TOML (DESIGN §2, §3).

A URL template with {job_id} (and {kind}), one of five auth schemes, a JSON path to
the status and a map from terminal statuses to outcomes; any status not in the map
keeps the job running. Counts and times come from optional paths. 429/Retry-After,
404, 5xx, timeouts, the size cap and the rate limit behave as for every provider
(providers/base.py).
"""

from __future__ import annotations

import base64
import re
from typing import Any, Literal
from urllib.parse import quote, urlencode

from pydantic import Field, SecretStr, model_validator

from bridge.delivery.headers import check_headers
from bridge.errors import TransientUpstreamError
from bridge.model import Counts, JobSnapshot, Outcome
from bridge.providers.config import SourceBase
from bridge.providers.deps import BuildDeps
from bridge.providers.jsonpath import BadPath, Step, get_path, parse_path
from bridge.providers.oauth2 import ClientCredentials
from bridge.sections import check_http_url

TerminalOutcome = Literal["completed", "completed_with_errors", "failed", "canceled"]
_NEEDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "bearer": ("token",),
    "basic": ("username", "password"),
    "header": ("auth_header", "secret"),
    "oauth2": ("token_url", "client_id", "client_secret"),
}


GENERIC_DEFAULT_KIND = "job"  # a generic source's kind when its url has no {kind}


class GenericSource(SourceBase):
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
    # records processed, failures included (Salesforce's numberRecordsProcessed):
    # succeeded is then processed less failed
    processed_path: str | None = None
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
        if self.processed_path is not None and self.succeeded_path is not None:
            problems.append("processed_path: give succeeded_path or processed_path, not both")
        if self.processed_path is not None and self.failed_path is None:
            problems.append("processed_path: needs failed_path (succeeded = processed - failed)")
        for key in ("status_path", "total_path", "succeeded_path", "failed_path",
                    "processed_path", "finished_path", "created_path"):  # fmt: skip
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


# Counts are stored as 64-bit integers: anything outside is no count.
MAX_COUNT = 2**63 - 1


def _count(value: Any) -> int | None:
    """A count from a number or a numeric string, 0 to MAX_COUNT; anything else is no
    count."""
    if isinstance(value, bool):
        return None
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer() and abs(value) <= MAX_COUNT:
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 19:
            number = int(text)
    return number if number is not None and 0 <= number <= MAX_COUNT else None


def succeeded_of(processed: int | None, failed: int | None) -> int | None:
    """Records that succeeded, from those processed (failures included). Pure."""
    if processed is None or failed is None or failed > processed:
        return None
    return processed - failed


def outcome_with_counts(outcome: Outcome | None, counts: Counts) -> Outcome | None:
    """A job the upstream calls completed while it counts failed records completed with
    errors: HubSpot's DONE with ERRORS > 0 is not a clean import. Pure."""
    if outcome is Outcome.COMPLETED and counts.failed:
        return Outcome.COMPLETED_WITH_ERRORS
    return outcome


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    return str(value)


class GenericProvider:
    name = "generic"

    def __init__(self, cfg: GenericSource, credentials: ClientCredentials | None = None) -> None:
        self._cfg = cfg
        self.kinds = tuple(cfg.kinds) or (GENERIC_DEFAULT_KIND,)
        self._credentials = credentials
        self._status = parse_path(cfg.status_path)
        self._paths: dict[str, tuple[Step, ...] | None] = {
            name: parse_path(path) if path else None
            for name, path in (
                ("total", cfg.total_path),
                ("succeeded", cfg.succeeded_path),
                ("failed", cfg.failed_path),
                ("processed", cfg.processed_path),
                ("finished", cfg.finished_path),
                ("created", cfg.created_path),
            )
        }
        self._terminal = {status: Outcome(outcome) for status, outcome in cfg.terminal.items()}
        self._query = (
            ("?" if "?" not in cfg.url else "&") + urlencode(cfg.query) if cfg.query else ""
        )
        self._static = self._static_auth()

    def job_url(self, kind: str, job_id: str) -> str:
        url = self._cfg.url.replace("{job_id}", quote(job_id, safe="")).replace(
            "{kind}", quote(kind, safe="")
        )
        return url + self._query

    def _static_auth(self) -> dict[str, str]:
        cfg = self._cfg
        if cfg.auth == "bearer" and cfg.token is not None:
            return {"Authorization": f"Bearer {cfg.token.get_secret_value()}"}
        if cfg.auth == "basic" and cfg.username is not None and cfg.password is not None:
            pair = f"{cfg.username}:{cfg.password.get_secret_value()}".encode()
            return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
        if cfg.auth == "header" and cfg.auth_header and cfg.secret is not None:
            return {cfg.auth_header: cfg.secret.get_secret_value()}
        return {}

    async def auth_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self._cfg.headers, **self._static}
        if self._credentials is not None:
            headers["Authorization"] = f"Bearer {await self._credentials.token()}"
        return headers

    async def on_unauthorized(self, headers: dict[str, str]) -> bool:
        if self._credentials is None:
            return False  # a static credential cannot be refreshed
        await self._credentials.drop(headers.get("Authorization", "").removeprefix("Bearer "))
        return True

    def parse(self, body: Any) -> JobSnapshot:
        status = _text(get_path(body, self._status))
        if status is None:
            raise TransientUpstreamError(f"malformed answer: no status at {self._cfg.status_path}")

        def at(name: str) -> Any:
            steps = self._paths[name]
            return None if steps is None else get_path(body, steps)

        failed = _count(at("failed"))
        succeeded = _count(at("succeeded"))
        if self._paths["processed"] is not None:
            succeeded = succeeded_of(_count(at("processed")), failed)
        counts = Counts(total=_count(at("total")), succeeded=succeeded, failed=failed)
        return JobSnapshot(
            status=status,
            outcome=outcome_with_counts(self._terminal.get(status), counts),
            counts=counts,
            created_at=_text(at("created")),
            finished_at=_text(at("finished")),
            raw=body,
        )


def build(name: str, cfg: GenericSource, deps: BuildDeps) -> GenericProvider:
    credentials = None
    if cfg.auth == "oauth2" and cfg.token_url and cfg.client_id and cfg.client_secret:
        credentials = ClientCredentials(
            source=name,
            token_url=cfg.token_url,
            client_id=cfg.client_id,
            client_secret=cfg.client_secret.get_secret_value(),
            scope=cfg.scope,
            http=deps.http,
            tokens=deps.tokens,
            clock=deps.clock,
            throttle=deps.token_throttle(name),
        )
    return GenericProvider(cfg, credentials)
