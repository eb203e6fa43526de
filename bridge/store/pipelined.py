"""Many Lua script calls in one round trip.

redis-py's pipeline sends `SCRIPT EXISTS` before every pipeline that holds script
calls: a second round trip each time. Here each call is a plain `EVALSHA`; a script
missing from the server's cache (a restart, a failover) answers NOSCRIPT, which
means it did not run, so it is loaded and only those calls are sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

ScriptCall = tuple[AsyncScript, Sequence[str], Sequence[Any]]


async def run_scripts(client: aioredis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """One result per call, in order; a call's Redis error is its result (not raised)."""
    results = await _send(client, calls)
    missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
    if missing:
        for script in {id(calls[i][0]): calls[i][0] for i in missing}.values():
            await client.script_load(script.script)
        again = await _send(client, [calls[i] for i in missing])
        for i, result in zip(missing, again, strict=True):
            results[i] = result
    return results


async def run_scripts_or_raise(client: aioredis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """As run_scripts, raising the first error."""
    results = await run_scripts(client, calls)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def _send(client: aioredis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for script, keys, args in calls:
        pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    return list(await pipe.execute(raise_on_error=False))
