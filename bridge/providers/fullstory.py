"""FullStory batch import jobs (users and events).

GET {base}/v2/{kind}/batch/{job_id} with `Authorization: Basic <API_KEY>`, the key
as-is. Body: {"imports", "errors"?, "job": {"id", "status", "created", "finished"?}}.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

import orjson
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from bridge.errors import TransientUpstreamError
from bridge.model import Counts, JobSnapshot, Outcome
from bridge.providers.base import first_problem
from bridge.providers.config import SourceBase
from bridge.providers.deps import BuildDeps

DEFAULT_BASE_URL = "https://api.fullstory.com"
EU_BASE_URL = "https://api.eu1.fullstory.com"


class FullStorySource(SourceBase):
    provider: Literal["fullstory"]
    api_key: SecretStr
    # Attach the first page of GET …/batch/{job_id}/errors to import.failed.
    errors_sample: bool = False


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

    def __init__(
        self, api_key: str, base_url: str | None = None, *, errors_sample: bool = False
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url_for(api_key, base_url)
        self.wants_failure_details = errors_sample

    def failure_details_url(self, kind: str, job_id: str) -> str:
        """The failed items of a job, first page (202 while FullStory prepares them)."""
        return f"{self.job_url(kind, job_id)}/errors"

    def failure_details(self, body: Any) -> dict[str, Any]:
        return errors_sample(body)

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


# An errors sample keeps at most this many items, and this many bytes of them.
SAMPLE_ITEMS = 20
SAMPLE_BYTES = 16 * 1024


def errors_sample(body: Any) -> dict[str, Any]:
    """The first page of a job's errors, bounded: at most SAMPLE_ITEMS items and about
    SAMPLE_BYTES of them; says how many there are in all and whether it was cut."""
    results = body.get("results") if isinstance(body, dict) else None
    items = results if isinstance(results, list) else []
    total = body.get("total_records") if isinstance(body, dict) else None
    kept: list[Any] = []
    size = 0
    for item in items[:SAMPLE_ITEMS]:
        size += len(orjson.dumps(item))
        if size > SAMPLE_BYTES:
            break
        kept.append(item)
    return {
        "items": kept,
        "total": total if isinstance(total, int) and not isinstance(total, bool) else None,
        "truncated": len(kept) < len(items) or bool(body.get("next_page_token"))
        if isinstance(body, dict)
        else False,
    }


def build(name: str, cfg: FullStorySource, deps: BuildDeps) -> FullStoryProvider:
    return FullStoryProvider(
        cfg.api_key.get_secret_value(), cfg.base_url, errors_sample=cfg.errors_sample
    )
