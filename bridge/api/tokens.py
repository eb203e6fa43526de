"""Admin API: tokens scoped to tenants (`/v1/tokens`), managed only with the config
file's tokens. A token is shown once, at creation; only a hash of it is kept. It sees
and changes only the watches, events, deliveries and subscriptions of the sources its
patterns name (scope.py)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge.api.context import Answer, Call
from bridge.api.error_shape import ApiError, validation_fields
from bridge.store.tokens import TokenStore

PATTERN = r"^[A-Za-z0-9_*?-]{1,100}$"  # a source name, or one with * and ? in it


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "read"]
    sources: list[str] = Field(min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=500)

    def patterns_ok(self) -> list[dict[str, str]]:
        return [
            {"name": f"sources.{i}", "description": "a source name, or a pattern: acme-*"}
            for i, p in enumerate(self.sources)
            if not re.fullmatch(PATTERN, p)
        ]


def _managing(call: Call) -> None:
    if call.scope is not None:
        raise ApiError(403, "forbidden", "only the config file's tokens manage tokens")


async def create_token(call: Call) -> Answer:
    _managing(call)
    try:
        req = TokenCreate.model_validate(await call.json())
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", "the token is not valid",
                       validation_fields(exc)) from None  # fmt: skip
    problems = req.patterns_ok()
    if problems:
        raise ApiError(422, "invalid_request", "the token is not valid", problems)
    token, record = await TokenStore(call.ctx.store).create(
        req.role, req.sources, req.description, call.ctx.clock.now()
    )
    return Answer({**record.view(), "token": token}, 201)


async def list_tokens(call: Call) -> Answer:
    _managing(call)
    return Answer({"items": [r.view() for r in await TokenStore(call.ctx.store).list()]})


async def delete_token(call: Call) -> Answer:
    _managing(call)
    if not await TokenStore(call.ctx.store).delete(call.params["id"]):
        raise ApiError(404, "token_not_found", "no token with that id")
    return Answer(None, 204)
