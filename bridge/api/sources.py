"""Admin API: sources defined at run time (`/v1/sources`), beside the config file's.

A definition takes the keys of a [sources.NAME] table plus `name`, and is checked by
the config file's own model and rules. Secrets are write-only: every view shows a set
secret as `**********`. The config file's sources are listed with `static: true` and
refuse PATCH and DELETE (409). Every replica picks a change up within about a second
(sources_live.py); a deleted source's watches are dropped when next due, its events
kept."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge.api.context import Answer, ApiContext, Call
from bridge.api.error_shape import ApiError, validation_fields
from bridge.api.scope import allows
from bridge.providers.config import SourceBase
from bridge.providers.registry import PLUGINS
from bridge.source_defs import (
    name_problem,
    parse_source,
    rule_problems,
    secret_keys,
    source_doc,
    source_view,
    where_credentials_go,
)
from bridge.sources_live import LiveSources
from bridge.store.source_defs import SourceDefStore


class SourceCreate(BaseModel):
    """For the OpenAPI document: `name`, `provider`, then the keys of a [sources.NAME]
    table for that provider (README, Configuration)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    provider: Literal["fullstory", "talkdesk", "generic"]


class SourcePatch(BaseModel):
    """For the OpenAPI document: the keys to change (not `name`)."""

    model_config = ConfigDict(extra="allow")


PATCH_TRIES = 5  # compare-and-set rounds against changes made meanwhile


def _managing(call: Call) -> None:
    """Only the config file's tokens define, change, delete or check sources."""
    if call.scope is not None:
        raise ApiError(403, "forbidden", "only the config file's tokens manage sources")


def _live(ctx: ApiContext) -> LiveSources:
    if ctx.sources is None:
        raise ApiError(503, "unavailable", "sources are not served by this process")
    return ctx.sources


async def list_sources(call: Call) -> Answer:
    current = _live(call.ctx).current
    items = [
        source_view(name, cfg, static=name in current.static)
        for name, cfg in sorted(current.configs.items())
        if allows(call.scope, name)
    ]
    # defined, not usable on this replica (a key missing; a newer version's keys):
    # listed, so that it can be deleted or defined again
    items += [
        {"name": n, "static": False, "unusable": why}
        for n, why in current.invalid.items()
        if call.scope is None
    ]
    return Answer({"items": items})


async def get_source(call: Call) -> Answer:
    name, cfg, static = _named(call)
    return Answer(source_view(name, cfg, static=static))


async def create_source(call: Call) -> Answer:
    _managing(call)
    ctx, body = call.ctx, await call.json()
    live = _live(ctx)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "the body is a JSON object: a source's keys")
    fields = dict(body)
    name = fields.pop("name", None)
    problem = "`name` is required" if name is None else None
    if problem is None:
        problem = name_problem(name) if isinstance(name, str) else "a source name is a string"
    if problem:
        raise ApiError(422, "invalid_request", "the source is not valid",
                       [{"name": "name", "description": problem}])  # fmt: skip
    if name in live.current.static:
        raise ApiError(409, "source_exists", f"the config file defines a source {name!r}")
    cfg = _checked(ctx, name, fields)
    if not await SourceDefStore(ctx.store).create(name, source_doc(cfg), ctx.clock.now()):
        raise ApiError(409, "source_exists", f"a source {name!r} is defined already")
    await live.refresh()
    return Answer(source_view(name, cfg, static=False), 201)


async def patch_source(call: Call) -> Answer:
    """The keys given replace the stored ones (null removes one); made from the stored
    document with compare-and-set, so a change another replica made meanwhile is
    never lost. Changing where the credentials go needs them given again."""
    _managing(call)
    ctx = call.ctx
    name = call.params["name"]
    if name in _live(ctx).current.static:
        raise ApiError(409, "source_static", "a source of the config file: change the file")
    body = await call.json()
    if not isinstance(body, dict) or "name" in body:
        raise ApiError(422, "invalid_request", "the body is a JSON object of the keys to change "
                       "(a source is not renamed)")  # fmt: skip
    defs = SourceDefStore(ctx.store)
    for _ in range(PATCH_TRIES):
        found = await defs.get(name)
        if found is None:
            raise ApiError(404, "source_not_found", "no source with that name")
        stored, text = found
        given = orjson.loads(text)
        if "provider" in body and body["provider"] != given.get("provider"):
            raise ApiError(422, "invalid_request", "the source is not valid", [_field(
                "provider", "a source's provider is not changed: delete it and define it again"
            )])  # fmt: skip
        _credentials_follow(ctx, name, given, body)
        merged = {k: v for k, v in {**given, **body}.items() if v is not None}
        fresh = _checked(ctx, name, merged)
        if await defs.replace(name, source_doc(fresh), ctx.clock.now(), stored):
            await _live(ctx).refresh()
            return Answer(source_view(name, fresh, static=False))
    raise ApiError(409, "changed_meanwhile", "the source changed meanwhile: try again")


async def delete_source(call: Call) -> Answer:
    _managing(call)
    ctx = call.ctx
    name = call.params["name"]
    if name in _live(ctx).current.static:
        raise ApiError(409, "source_static", "a source of the config file: change the file")
    if not await SourceDefStore(ctx.store).delete(name, ctx.clock.now()):
        raise ApiError(404, "source_not_found", "no source with that name")
    await _live(ctx).refresh()
    return Answer(None, 204)


def _credentials_follow(
    ctx: ApiContext, name: str, given: dict[str, Any], body: dict[str, Any]
) -> None:
    """A change of where requests go (base_url, token_url, region, …) with the stored
    secrets would hand them to the new host: they must come in the same change."""
    moved = sorted(k for k in body if where_credentials_go(k) and body[k] != given.get(k))
    if not moved:
        return
    try:
        secrets = secret_keys(parse_source(given))
    except ValidationError:
        return  # checked below, with the change
    missing = [k for k in secrets if k not in body]
    if missing:
        raise ApiError(422, "invalid_request", "the source is not valid", [_field(
            missing[0], f"changing {', '.join(moved)} sends the credentials there: "
            f"give {', '.join(missing)} again in the same change"
        )])  # fmt: skip


def _field(name: str, description: str) -> dict[str, str]:
    return {"name": name, "description": description}


async def check_source(call: Call) -> Answer:
    """One authenticated request: do the credentials work?"""
    _managing(call)
    ctx = call.ctx
    name, _, _ = _named(call)
    if ctx.check_source is None:
        raise ApiError(503, "unavailable", "this process does not poll")
    return Answer(await ctx.check_source(name))


def _named(call: Call) -> tuple[str, SourceBase, bool]:
    current = _live(call.ctx).current
    name = call.params["name"]
    cfg = current.configs.get(name)
    if cfg is None or not allows(call.scope, name):
        raise ApiError(404, "source_not_found", "no source with that name")
    return name, cfg, name in current.static


def _keyed(field: dict[str, str]) -> dict[str, str]:
    """A field named as the config file's key: `api_key`, not `fullstory.api_key`
    (pydantic names the provider it tried first); a check of the whole source names
    its key in the text (`burst: must not …`); the provider's own error without the
    value given."""
    head, _, rest = field["name"].partition(".")
    if head in PLUGINS and rest:
        return {**field, "name": rest}
    if head in PLUGINS:
        key, sep, why = field["description"].partition(": ")
        if sep and key.isidentifier():
            return _field(key, why)
    if field["name"] == "body" and "'provider'" in field["description"]:
        return _field("provider", f"one of: {', '.join(PLUGINS)}")
    return field


def _checked(ctx: ApiContext, name: str, fields: dict[str, Any]) -> SourceBase:
    try:
        cfg = parse_source(fields)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", "the source is not valid",
                       [_keyed(f) for f in validation_fields(exc)]) from None  # fmt: skip
    problems = rule_problems(name, cfg, ctx.retention)
    if problems:
        field = [{"name": "discover_since", "description": p} for p in problems]
        raise ApiError(422, "invalid_request", "the source is not valid", field)
    return cfg
