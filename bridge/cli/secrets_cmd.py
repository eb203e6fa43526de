"""`import-bridge secrets new-key | rotate`: keys for secrets sealed at rest, and sealing
everything stored under the first of them (sealing.py)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.errors import BridgeError
from bridge.sealing import Sealer, key_id, new_key

if TYPE_CHECKING:
    from bridge.store.connection import RedisTarget


def add_secrets_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    secrets = sub.add_parser("secrets", help="keys that seal secrets at rest")
    actions = secrets.add_subparsers(dest="secrets_command", required=True)
    actions.add_parser("new-key", help="print a new key for secrets_keys")
    rotate = actions.add_parser(
        "rotate", help="seal every stored secret under the first of secrets_keys"
    )
    rotate.add_argument("--config", help="TOML config file (or env BRIDGE_CONFIG)")
    rotate.add_argument(
        "--secrets-dir", help="directory of secret files (or env BRIDGE_SECRETS_DIR)"
    )
    rotate.add_argument("--data-dir", default=".bridge", help="embedded Redis data (no redis_url)")


def run_secrets(args: argparse.Namespace) -> int:
    from bridge.settings import load_settings
    from bridge.store.connection import RedisTarget
    from bridge.store.embedded import EmbeddedRedis

    if args.secrets_command == "new-key":
        print(new_key())
        return 0
    settings = load_settings(args.config, secrets_dir=args.secrets_dir)
    target = settings.redis_target()
    keys = settings.sealing_keys()
    started = None
    if target is None:  # the embedded Redis: its own key unless keys are configured
        embedded = EmbeddedRedis(Path(args.data_dir).resolve())
        if not embedded.socket.exists():  # not running: started for this
            embedded.start()
            started = embedded
        try:
            keys = embedded.sealing_keys(keys)
        except BridgeError:
            if started is not None:
                started.stop()
            raise
        target = RedisTarget(url=embedded.url)
    if not keys:
        raise BridgeError("secrets_keys is empty: there is no key to seal with")
    try:
        written, current, defined, tokens, rewritten = asyncio.run(
            _reseal(target, settings.key_prefix, keys, list(settings.sources))
        )
    finally:
        if started is not None:
            started.stop()
    print(
        f"sealed under key {key_id(keys[0])}: {written} subscriptions written again, "
        f"{current} already so, {defined} source definitions, {tokens} access tokens"
    )
    if rewritten:
        print("Redis is rewriting its append-only file: the values it held before go with it")
    else:
        print(
            "run BGREWRITEAOF on the Redis primary (this user may not): until then its "
            "append-only file still holds the values as they were"
        )
    return 0


async def _reseal(
    target: RedisTarget, prefix: str, keys: list[bytes], sources: list[str]
) -> tuple[int, int, int, int, bool]:
    from bridge.store.connection import connect
    from bridge.store.deliveries import DeliveryStore
    from bridge.store.redis import RedisStore
    from bridge.store.source_defs import SourceDefStore

    store = RedisStore(connect(target, max_connections=4), prefix, sealer=Sealer(keys))
    try:
        deliveries = DeliveryStore(store)
        unreadable = await deliveries.unreadable_subscriptions()
        if unreadable:
            raise BridgeError("; ".join(unreadable))
        written, current, missed = await deliveries.reseal_subscriptions()
        if missed:
            raise BridgeError(
                "changed too often meanwhile to be sealed again (run it again): "
                + ", ".join(missed)
            )
        defs = SourceDefStore(store)
        defined, changed = await defs.reseal()
        if changed:
            raise BridgeError("changed meanwhile (run it again): sources " + ", ".join(changed))
        names = dict.fromkeys([*sources, *await defs.names()])
        tokens = sum([await store.sources.reseal_token(name) for name in names])
        rewritten = await store.rewrite_aof()  # the old forms go only with a rewrite
    finally:
        await store.close()
    return written, current, defined, tokens, rewritten
