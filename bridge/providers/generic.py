"""The generic provider: any job API described in TOML (DESIGN §2, §3).

A URL template with {job_id} (and {kind}), one of five auth schemes, a JSON path to
the status and a map from terminal statuses to outcomes; any status not in the map
keeps the job running. Counts and times come from optional paths. 429/Retry-After,
404, 5xx, timeouts, the size cap and the rate limit behave as for every provider
(providers/base.py).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, urlencode

from bridge.errors import TransientUpstreamError
from bridge.model import Counts, JobSnapshot, Outcome
from bridge.providers.jsonpath import Step, get_path, parse_path
from bridge.providers.oauth2 import ClientCredentials
from bridge.settings import GENERIC_DEFAULT_KIND, GenericSource

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

        return JobSnapshot(
            status=status,
            outcome=self._terminal.get(status),
            counts=Counts(
                total=_count(at("total")),
                succeeded=_count(at("succeeded")),
                failed=_count(at("failed")),
            ),
            created_at=_text(at("created")),
            finished_at=_text(at("finished")),
            raw=body,
        )
