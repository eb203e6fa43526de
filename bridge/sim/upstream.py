"""A simulator of the FullStory and Talkdesk job-status APIs, for tests, demos and benchmarks.

Jobs progress with wall-clock time. Faults are queued and served in order to the
next matching status requests. Every request is logged with its arrival time.

Control endpoints (under /_sim): POST /_sim/jobs, POST /_sim/faults, POST /_sim/revoke,
GET /_sim/requests, GET /_sim/jobs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from functools import partial
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bridge.sim import shapes

Provider = Literal["fullstory", "talkdesk", "salesforce", "github", "hubspot"]
FaultKind = Literal["429", "429_date", "500", "503", "slow", "garbage", "html", "huge", "401"]

FULLSTORY_FINAL = ("COMPLETED", "FAILED")
TALKDESK_FINAL = ("COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED")


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Provider
    kind: str = "users"
    id: str = Field(default_factory=lambda: secrets.token_hex(6))
    duration: float = Field(default=5.0, ge=0)
    final_status: str = "COMPLETED"
    total: int = Field(default=100, ge=0)
    failed: int = Field(default=0, ge=0)
    # characters of filler in the answer ("notes"): a larger body, for the benchmarks
    padding: int = Field(default=0, ge=0, le=10_000_000)


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: FaultKind
    provider: Provider | None = None
    count: int = Field(default=1, ge=1)
    retry_after: float = 1.0
    delay: float = 5.0


@dataclass
class SimJob:
    spec: JobSpec
    created: float


@dataclass
class Fault:
    spec: FaultSpec
    left: int


@dataclass(frozen=True)
class RequestRecord:
    t: float
    provider: str
    path: str
    status: int
    user_agent: str = ""


@dataclass
class SimState:
    api_key: str = "sim-fullstory-key"
    client_id: str = "sim-client"
    client_secret: str = "sim-secret"  # noqa: S105 - a simulator's well-known test credential
    token_ttl: float = 3600.0
    errors_delay: float = 0.5  # FullStory's errors endpoint answers 202 this long after a failure
    jobs: dict[tuple[str, str, str], SimJob] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # token → expiry
    # Most recent requests first to go when full (benchmarks run with a small log).
    log_limit: int = 200_000
    requests: deque[RequestRecord] = field(default_factory=deque)
    tokens_issued: int = 0
    # How the imports list writes `_links.next`: an absolute URL on this host, a path
    # (HAL allows relative hrefs), or a URL on another host (the vendor's own example).
    list_links: Literal["absolute", "relative", "foreign"] = "absolute"


def _provider_of(path: str) -> str:
    """Whose API a request path belongs to (for the request log)."""
    if path.startswith("/v2/"):
        return "fullstory"
    for vendor, prefix in (
        ("salesforce", "/services/"),
        ("github", "/repos/"),
        ("hubspot", "/crm/"),
    ):
        if path.startswith(prefix):
            return vendor
    return "talkdesk"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


class Simulator:
    def __init__(self, state: SimState | None = None) -> None:
        self.state = state or SimState()
        self.state.requests = deque(self.state.requests, maxlen=self.state.log_limit or None)

    # ------------------------------------------------------------ control
    def add_job(self, spec: JobSpec) -> SimJob:
        job = SimJob(spec, time.time())
        self.state.jobs[(spec.provider, spec.kind, spec.id)] = job
        return job

    def add_fault(self, spec: FaultSpec) -> None:
        self.state.faults.append(Fault(spec, spec.count))

    def revoke_tokens(self) -> None:
        self.state.tokens.clear()

    def status_requests(self, provider: str | None = None) -> list[RequestRecord]:
        return [
            r
            for r in self.state.requests
            if not r.path.startswith(("/oauth", "/_sim"))
            and (provider is None or r.provider == provider)
        ]

    # ------------------------------------------------------------- bodies
    def fullstory_body(self, job: SimJob, now: float) -> dict[str, Any]:
        spec = job.spec
        done = now - job.created >= spec.duration
        frac = 1.0 if done else (now - job.created) / spec.duration if spec.duration else 1.0
        status = spec.final_status if done else "PROCESSING"
        body: dict[str, Any] = {
            "imports": int((spec.total - spec.failed) * frac),
            "job": {"id": spec.id, "status": status, "created": _iso(job.created)},
        }
        if done:
            body["job"]["finished"] = _iso(job.created + spec.duration)
            if status == "FAILED":
                body["errors"] = spec.failed
        if spec.padding:
            body["job"]["notes"] = "x" * spec.padding
        return body

    def talkdesk_body(self, job: SimJob, now: float) -> dict[str, Any]:
        spec = job.spec
        elapsed = now - job.created
        done = elapsed >= spec.duration
        queued = not done and elapsed < spec.duration * 0.1
        frac = 1.0 if done else max(0.0, (elapsed - spec.duration * 0.1) / (spec.duration * 0.9))
        status = spec.final_status if done else ("QUEUED" if queued else "IN_PROGRESS")
        if status == "CANCELED":
            frac = 0.5
        body: dict[str, Any] = {
            "id": spec.id,
            "filename": f"{spec.id}.csv",
            "total_records": spec.total,
            "completed_records": int((spec.total - spec.failed) * frac),
            "failed_records": int(spec.failed * frac),
            "status": status,
            "type": "CREATE_USERS",
            "created_by": "sim",
            "created_at": _iso(job.created),
            "updated_by": "sim",
            "updated_at": _iso(min(now, job.created + spec.duration)),
            "canceled_by": "sim" if status == "CANCELED" else None,
            "canceled_at": _iso(job.created + spec.duration) if status == "CANCELED" else None,
            "_links": {
                "self": {"href": f"/bulk-imports/users/{spec.id}"},
                "records": {"href": f"/bulk-imports/users/{spec.id}/records"},
            },
        }
        return body

    # ------------------------------------------------------------- serving
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._log_middleware])
        app.router.add_get("/v2/{kind}/batch/{id}", self.fullstory_get)
        app.router.add_get("/v2/{kind}/batch/{id}/errors", self.fullstory_errors)
        app.router.add_get("/bulk-imports/{kind}/{id}", self.talkdesk_get)
        app.router.add_get("/bulk-imports/{kind}", self.talkdesk_list)
        for vendor, route in shapes.ROUTES.items():
            app.router.add_get(route, partial(self.shaped_get, vendor))
        app.router.add_post("/oauth/token", self.token)
        app.router.add_post("/_sim/jobs", self.ctl_add_job)
        app.router.add_get("/_sim/jobs", self.ctl_jobs)
        app.router.add_post("/_sim/faults", self.ctl_add_fault)
        app.router.add_post("/_sim/revoke", self.ctl_revoke)
        app.router.add_get("/_sim/requests", self.ctl_requests)
        return app

    @web.middleware
    async def _log_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        arrived = time.time()
        provider = _provider_of(request.path)
        try:
            resp: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            agent = request.headers.get("User-Agent", "")
            self.state.requests.append(
                RequestRecord(arrived, provider, request.path, exc.status, agent)
            )
            raise
        agent = request.headers.get("User-Agent", "")
        self.state.requests.append(
            RequestRecord(arrived, provider, request.path, resp.status, agent)
        )
        return resp

    async def _fault(self, provider: str) -> web.StreamResponse | None:
        for fault in self.state.faults:
            if fault.left > 0 and fault.spec.provider in (None, provider):
                fault.left -= 1
                return await self._serve_fault(fault.spec)
        return None

    async def _serve_fault(self, spec: FaultSpec) -> web.StreamResponse | None:
        if spec.kind == "429":
            return _error(
                429, "too_many_requests", "slow down", {"Retry-After": f"{spec.retry_after:g}"}
            )
        if spec.kind == "429_date":
            when = formatdate(time.time() + spec.retry_after, usegmt=True)
            return _error(429, "too_many_requests", "slow down", {"Retry-After": when})
        if spec.kind in ("500", "503", "401"):
            return _error(int(spec.kind), "server_error", "simulated failure")
        if spec.kind == "slow":
            await asyncio.sleep(spec.delay)
            return None
        if spec.kind == "garbage":
            return web.Response(text='{"job": {"status": ', content_type="application/json")
        if spec.kind == "html":
            return web.Response(
                text="<html><body>502 Bad Gateway</body></html>",
                status=200,
                content_type="text/html",
            )
        return web.Response(
            body=b"[" + b"0," * (4 * 1024 * 1024) + b"0]", content_type="application/json"
        )

    async def fullstory_get(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Basic {self.state.api_key}":
            return _error(401, "unauthorized", "access is unauthorized")
        if (fault := await self._fault("fullstory")) is not None:
            return fault
        kind, job_id = request.match_info["kind"], request.match_info["id"]
        job = self.state.jobs.get(("fullstory", kind, job_id))
        if job is None:
            return _error(404, "resource_not_found", "Requested resource does not exist")
        return web.json_response(self.fullstory_body(job, time.time()))

    async def fullstory_errors(self, request: web.Request) -> web.StreamResponse:
        """A job's failed items, 100 a page: 202 until half a second after it failed."""
        if request.headers.get("Authorization") != f"Basic {self.state.api_key}":
            return _error(401, "unauthorized", "access is unauthorized")
        kind, job_id = request.match_info["kind"], request.match_info["id"]
        job = self.state.jobs.get(("fullstory", kind, job_id))
        if job is None:
            return _error(404, "resource_not_found", "Requested resource does not exist")
        spec, now = job.spec, time.time()
        if now < job.created + spec.duration + self.state.errors_delay:
            return web.json_response({}, status=202)
        failed = spec.failed if spec.final_status == "FAILED" else 0
        results = [
            {"item_index": i, "code": "invalid_field", "message": f"record {i}: bad email"}
            for i in range(min(failed, 100))
        ]
        body: dict[str, Any] = {"results": results, "total_records": failed}
        if failed > 100:
            body["next_page_token"] = "page-2"  # noqa: S105 - a page cursor, not a secret
        return web.json_response(body)

    async def talkdesk_get(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        expiry = self.state.tokens.get(token)
        if not auth.startswith("Bearer ") or expiry is None or expiry < time.time():
            return _td_error(401, "1001", "invalid authorization")
        if request.headers.get("Accept") != "application/json":
            return _td_error(406, "1006", "accept format MIME type unsupported")
        if (fault := await self._fault("talkdesk")) is not None:
            return fault
        kind, job_id = request.match_info["kind"], request.match_info["id"]
        job = self.state.jobs.get(("talkdesk", kind, job_id))
        if job is None:
            return _td_error(404, "1004", "import not found")
        return web.json_response(self.talkdesk_body(job, time.time()))

    async def shaped_get(self, vendor: str, request: web.Request) -> web.StreamResponse:
        """A job in another vendor's shape (sim/shapes.py), bearer token required: the
        vendor's static one or one from /oauth/token."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        expiry = self.state.tokens.get(token, 0.0)
        if token != shapes.STATIC_TOKENS[vendor] and expiry < time.time():
            return web.json_response({"message": "Bad credentials"}, status=401)
        if (fault := await self._fault(vendor)) is not None:
            return fault
        job = self.state.jobs.get((vendor, "users", request.match_info["id"]))
        if job is None:
            return web.json_response({"message": "Not Found"}, status=404)
        spec, now = job.spec, time.time()
        return web.json_response(
            shapes.body(
                vendor,
                job_id=spec.id,
                final_status=spec.final_status,
                total=spec.total,
                failed=spec.failed,
                created=_iso(job.created),
                now_iso=_iso(now),
                finished=_iso(job.created + spec.duration),
                elapsed=now - job.created,
                duration=spec.duration,
            )
        )

    async def talkdesk_list(self, request: web.Request) -> web.StreamResponse:
        """The imports list: HAL, newest first, 50 per page, `_links.next` until the last."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.state.tokens.get(token, 0.0) < time.time():
            return _td_error(401, "1001", "invalid authorization")
        if (fault := await self._fault("talkdesk")) is not None:
            return fault
        kind = request.match_info["kind"]
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            return _td_error(400, "1002", "invalid page")
        now = time.time()
        jobs = sorted(
            (j for (p, k, _), j in self.state.jobs.items() if p == "talkdesk" and k == kind),
            key=lambda j: j.created,
            reverse=True,
        )
        per_page = 50
        chunk = jobs[(page - 1) * per_page : page * per_page]
        links: dict[str, Any] = {"self": {"href": str(request.url)}}
        if page * per_page < len(jobs):
            nxt = request.url.update_query(page=page + 1, per_page=per_page)
            href = {
                "absolute": str(nxt),
                "relative": nxt.path_qs,
                "foreign": f"http://api-docs.talkdesk.org{nxt.path_qs}",
            }[self.state.list_links]
            links["next"] = {"href": href}
        return web.json_response(
            {
                "total": len(jobs),
                "count": len(chunk),
                "page": page,
                "per_page": per_page,
                "_embedded": {"imports": [self.talkdesk_body(j, now) for j in chunk]},
                "_links": links,
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(
            f"{self.state.client_id}:{self.state.client_secret}".encode()
        ).decode()
        form = await request.post()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = secrets.token_urlsafe(24)
        self.state.tokens[token] = time.time() + self.state.token_ttl
        self.state.tokens_issued += 1
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.state.token_ttl,
                "scope": form.get("scope", ""),
            }
        )

    async def ctl_add_job(self, request: web.Request) -> web.Response:
        spec = JobSpec.model_validate(await request.json())
        self.add_job(spec)
        return web.json_response(spec.model_dump(), status=201)

    async def ctl_jobs(self, request: web.Request) -> web.Response:
        now = time.time()
        out = []
        for job in self.state.jobs.values():
            body = (
                self.fullstory_body if job.spec.provider == "fullstory" else self.talkdesk_body
            )(job, now)
            out.append({"spec": job.spec.model_dump(), "body": body})
        return web.json_response(out)

    async def ctl_add_fault(self, request: web.Request) -> web.Response:
        spec = FaultSpec.model_validate(await request.json())
        self.add_fault(spec)
        return web.json_response(spec.model_dump(), status=201)

    async def ctl_revoke(self, request: web.Request) -> web.Response:
        self.revoke_tokens()
        return web.json_response({"revoked": True})

    async def ctl_requests(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "tokens_issued": self.state.tokens_issued,
                "requests": [asdict(r) for r in self.state.requests],
            }
        )


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps({"message": message, "code": code}),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _td_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "fields": []}, status=status)
