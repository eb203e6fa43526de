"""`[[subscriptions]]` from the config, synced at start and after Redis lost its data:
the config is their source of truth. Settings validated every entry already."""

from __future__ import annotations

import structlog

from bridge.delivery import signing
from bridge.model import Subscription
from bridge.settings import Settings
from bridge.store.deliveries import DeliveryStore, static_subscription_id

log = structlog.get_logger("bridge.delivery")


async def sync_static_subscriptions(store: DeliveryStore, settings: Settings, now: float) -> None:
    """Create or update every configured subscription; delete static ones no longer there."""
    wanted: dict[str, Subscription] = {}
    existing = {s.id: s for s in await store.list_subscriptions()}
    for cfg in settings.subscriptions:
        sub_id = static_subscription_id(cfg.url)
        old = existing.get(sub_id)
        secrets: tuple[tuple[str, float | None], ...]
        if cfg.secret is not None:
            secrets = ((cfg.secret.get_secret_value(), None),)
        elif old is not None:  # generated once and kept across restarts
            secrets = old.secrets
        else:  # never shown: a receiver can verify only once a rotation reveals one
            secrets = ((signing.new_secret(), None),)
            log.warning(
                "static_subscription_secret_generated",
                subscription_id=sub_id,
                message="no secret in the config: one was generated and is never shown; "
                f"set `secret` in [[subscriptions]], or run `import-bridge sub rotate {sub_id}` "
                "to get one a receiver can verify with",
            )
        wanted[sub_id] = Subscription(
            id=sub_id,
            url=cfg.url,
            secrets=secrets,
            event_types=tuple(cfg.event_types),
            sources=tuple(cfg.sources),
            metadata=tuple(sorted(cfg.metadata.items())),
            format=cfg.format,
            headers=tuple(sorted(cfg.headers.items())),
            description=cfg.description,
            created_at=old.created_at if old else now,
            static=True,
        )
    for sub in wanted.values():
        if existing.get(sub.id) != sub:
            await store.save_subscription(sub)
    for sub_id, sub in existing.items():
        if sub.static and sub_id not in wanted:
            await store.delete_subscription(sub_id, now)
