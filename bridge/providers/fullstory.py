"""FullStory batch import jobs (users and events).

GET {base}/v2/{kind}/batch/{job_id} with `Authorization: Basic <API_KEY>`, the key
as-is. Body: {"imports", "errors"?, "job": {"id", "status", "created", "finished"?}}.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from bridge.errors import TransientUpstreamError
from bridge.model import Counts, JobSnapshot, Outcome
from bridge.providers.base import first_problem

DEFAULT_BASE_URL = "https://api.fullstory.com"
EU_BASE_URL = "https://api.eu1.fullstory.com"

STATUS_OUTCOMES: dict[str, Outcome | None] = {
    "PROCESSING": None,
    "COMPLETED": Outcome.COMPLETED,
    "FAILED": Outcome.FAILED,  # includes partial failures
}


class _Job(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    status: str
    created: str | None = None
    finished: str | None = None


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")
    imports: int | None = None
    errors: int | None = None
    job: _Job


def outcome_for(status: str) -> Outcome | None:
    """Map a raw status; unknown statuses count as still running."""
    return STATUS_OUTCOMES.get(status)


def base_url_for(api_key: str, override: str | None) -> str:
    if override:
        return override.rstrip("/")
    return EU_BASE_URL if api_key.startswith("eu1.") else DEFAULT_BASE_URL


class FullStoryProvider:
    name = "fullstory"
    kinds = ("users", "events")

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self._api_key = api_key
        self.base_url = base_url_for(api_key, base_url)

    def job_url(self, kind: str, job_id: str) -> str:
        return f"{self.base_url}/v2/{kind}/batch/{quote(job_id, safe='')}"

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Basic {self._api_key}", "Accept": "application/json"}

    async def on_unauthorized(self, headers: dict[str, str]) -> bool:
        return False  # a static key cannot be refreshed

    def parse(self, body: Any) -> JobSnapshot:
        try:
            parsed = _Body.model_validate(body)
        except ValidationError as exc:
            raise TransientUpstreamError(f"malformed answer: {first_problem(exc)}") from None
        status = parsed.job.status
        return JobSnapshot(
            status=status,
            outcome=outcome_for(status),
            counts=Counts(total=None, succeeded=parsed.imports, failed=parsed.errors),
            created_at=parsed.job.created,
            finished_at=parsed.job.finished,
            raw=body,
        )
