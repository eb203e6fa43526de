"""Talkdesk Bulk Import API (`bulk-imports:read`).

GET {base}/bulk-imports/users/{id} with a bearer token from the OAuth2 client
credentials grant (providers/oauth2.py: shared by every replica), and
`Accept: application/json` (406 otherwise). A 401 drops the token and the poll is
retried once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from bridge.clock import Clock
from bridge.errors import TransientUpstreamError
from bridge.model import Counts, JobSnapshot, Outcome
from bridge.providers.base import DiscoverySettings, ListPage, first_problem
from bridge.providers.config import DiscoveryFields, SourceBase
from bridge.providers.deps import BuildDeps
from bridge.providers.http import HttpClient
from bridge.providers.oauth2 import ClientCredentials, TokenCache
from bridge.sections import check_http_url

API_HOSTS = {
    "us": "https://api.talkdeskapp.com",
    "eu": "https://api.talkdeskapp.eu",
    "ca": "https://api.talkdeskappca.com",
}
ID_HOSTS = {"us": "talkdeskid.com", "eu": "talkdeskid.eu", "ca": "talkdeskidca.com"}
SCOPE = "bulk-imports:read"


class _TalkdeskFields(SourceBase):
    provider: Literal["talkdesk"]
    account: str = Field(min_length=1, pattern=r"^[A-Za-z0-9-]+$")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    region: Literal["us", "eu", "ca"] = "us"
    token_url: str | None = None

    @model_validator(mode="after")
    def _check_token_url(self) -> _TalkdeskFields:
        if self.token_url is not None:
            try:
                check_http_url(self.token_url)
            except ValueError as exc:
                raise ValueError(f"token_url: {exc}") from None
        return self


class TalkdeskSource(DiscoveryFields, _TalkdeskFields):
    """A Talkdesk account; its own fields first, then discovery's (config check)."""


STATUS_OUTCOMES: dict[str, Outcome | None] = {
    "QUEUED": None,
    "IN_PROGRESS": None,
    "COMPLETED": Outcome.COMPLETED,
    "COMPLETED_WITH_ERRORS": Outcome.COMPLETED_WITH_ERRORS,
    "FAILED": Outcome.FAILED,
    "CANCELED": Outcome.CANCELED,
}


class _Import(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    status: str
    total_records: int | None = None
    completed_records: int | None = None
    failed_records: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    canceled_at: str | None = None


class _Href(BaseModel):
    model_config = ConfigDict(extra="allow")
    href: str


class _Links(BaseModel):
    model_config = ConfigDict(extra="allow")
    next: _Href | None = None


class _Listed(BaseModel):
    """An import as discovery needs it: its id and when it was created."""

    model_config = ConfigDict(extra="allow")
    id: str | None = None
    created_at: str | None = None


class _Embedded(BaseModel):
    model_config = ConfigDict(extra="allow")
    imports: list[Any] = []  # each item read on its own: one odd import spoils nothing


class _ImportList(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    embedded: _Embedded = Field(default_factory=_Embedded, alias="_embedded")
    links: _Links = Field(default_factory=_Links, alias="_links")


def next_page_url(href: str, page_url: str, base_url: str) -> tuple[str, str | None]:
    """Where a HAL next link leads, on the configured host only (the bearer token never
    leaves it): a relative href is resolved against the page it came from; an absolute
    one on another host keeps its path and query on the configured host (the vendor's
    own example names a documentation host). Returns the URL and the foreign host, if
    any."""
    link = urlsplit(urljoin(page_url, href))
    base = urlsplit(base_url)
    if (link.scheme, link.netloc) == (base.scheme, base.netloc):
        return link.geturl(), None
    prefix = base.path.rstrip("/")
    path = link.path if link.path.startswith(prefix + "/") else prefix + link.path
    return urlunsplit((base.scheme, base.netloc, path, link.query, "")), link.netloc


def outcome_for(status: str) -> Outcome | None:
    return STATUS_OUTCOMES.get(status)


def finished_at(body: _Import, outcome: Outcome | None) -> str | None:
    if outcome is Outcome.CANCELED and body.canceled_at:
        return body.canceled_at
    return body.updated_at if outcome else None


class TalkdeskProvider:
    name = "talkdesk"
    kinds = ("users",)

    def __init__(
        self,
        *,
        source: str,
        account: str,
        client_id: str,
        client_secret: str,
        http: HttpClient,
        tokens: TokenCache,
        clock: Clock,
        region: str = "us",
        base_url: str | None = None,
        token_url: str | None = None,
        token_throttle: Callable[[], Awaitable[None]] | None = None,
        discovery: DiscoverySettings | None = None,
    ) -> None:
        self.discovery = discovery  # watch new imports from the list (None: not asked)
        self.base_url = (base_url or API_HOSTS[region]).rstrip("/")
        self.credentials = ClientCredentials(
            source=source,
            token_url=token_url or f"https://{account}.{ID_HOSTS[region]}/oauth/token",
            client_id=client_id,
            client_secret=client_secret,
            scope=SCOPE,
            http=http,
            tokens=tokens,
            clock=clock,
            throttle=token_throttle,
        )

    @property
    def token_url(self) -> str:
        return self.credentials.token_url

    @property
    def tokens_requested(self) -> int:
        return self.credentials.tokens_requested

    def list_url(self, kind: str) -> str:
        return f"{self.base_url}/bulk-imports/{kind}"

    def parse_list(self, body: Any, page_url: str) -> ListPage:
        """One page of the imports list (HAL), read from page_url."""
        try:
            page = _ImportList.model_validate(body)
        except ValidationError as exc:
            raise TransientUpstreamError(f"malformed list: {first_problem(exc)}") from None
        items = []
        for raw in page.embedded.imports:
            try:
                listed = _Listed.model_validate(raw)
            except ValidationError:
                continue  # not an import this bridge can read: the others still count
            if listed.id:
                items.append((listed.id, listed.created_at))
        if page.links.next is None:
            return ListPage(items, None)
        nxt, foreign = next_page_url(page.links.next.href, page_url, self.base_url)
        return ListPage(items, nxt, foreign)

    def job_url(self, kind: str, job_id: str) -> str:
        return f"{self.base_url}/bulk-imports/{kind}/{quote(job_id, safe='')}"

    async def auth_headers(self) -> dict[str, str]:
        token = await self.credentials.token()
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def on_unauthorized(self, headers: dict[str, str]) -> bool:
        await self.credentials.drop(headers.get("Authorization", "").removeprefix("Bearer "))
        return True

    def parse(self, body: Any) -> JobSnapshot:
        try:
            parsed = _Import.model_validate(body)
        except ValidationError as exc:
            raise TransientUpstreamError(f"malformed answer: {first_problem(exc)}") from None
        outcome = outcome_for(parsed.status)
        return JobSnapshot(
            status=parsed.status,
            outcome=outcome,
            counts=Counts(
                total=parsed.total_records,
                succeeded=parsed.completed_records,
                failed=parsed.failed_records,
            ),
            created_at=parsed.created_at,
            finished_at=finished_at(parsed, outcome),
            raw=body,
        )


def build(name: str, cfg: TalkdeskSource, deps: BuildDeps) -> TalkdeskProvider:
    discovery = (
        DiscoverySettings(cfg.discover_since, cfg.discover_interval, cfg.discover_max_watches)
        if cfg.discover
        else None
    )
    return TalkdeskProvider(
        source=name,
        account=cfg.account,
        client_id=cfg.client_id,
        client_secret=cfg.client_secret.get_secret_value(),
        http=deps.http,
        tokens=deps.tokens,
        clock=deps.clock,
        region=cfg.region,
        base_url=cfg.base_url,
        token_url=cfg.token_url,
        token_throttle=deps.token_throttle(name),
        discovery=discovery,
    )
