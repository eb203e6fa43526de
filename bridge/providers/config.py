"""What every source's config has, whatever its provider; and the fields of the
abilities a provider may have (discovery)."""

from __future__ import annotations

from pydantic import Field, model_validator

from bridge.sections import Section, check_http_url


class SourceBase(Section):
    # 0 turns the limiter off (benchmarks against a local simulator only).
    rate_limit: float = Field(default=5.0, ge=0)
    # Requests allowed back to back; 1 spaces them evenly. Never above rate_limit.
    burst: int = Field(default=1, ge=1)
    base_url: str | None = None

    @model_validator(mode="after")
    def _check_burst(self) -> SourceBase:
        if self.rate_limit and self.burst > max(1.0, self.rate_limit):
            raise ValueError("burst: must not exceed rate_limit")
        if self.base_url is not None:
            try:
                check_http_url(self.base_url)
            except ValueError as exc:
                raise ValueError(f"base_url: {exc}") from None
        return self


class DiscoveryFields(Section):
    """A provider that can list its jobs: watch every new one without anyone
    registering it, within the source's rate budget; idempotent across replicas."""

    discover: bool = False
    discover_since: float = Field(default=86400.0, gt=0)  # backfill window, seconds
    discover_interval: float = Field(default=30.0, ge=1)  # between two looks at the list
    # Jobs discovery may watch for this source within poll.max_age: a list whose ids
    # change at every look cannot grow the store without end (beyond: counted, logged).
    discover_max_watches: int = Field(default=10_000, ge=1)
