"""`[[subscriptions]]` from the config, synced at start: the config is their source of truth."""

from __future__ import annotations

from bridge.delivery import signing
from bridge.delivery.targets import TargetRefused, check_url
from bridge.errors import ConfigError
from bridge.model import Subscription
from bridge.settings import Settings
from bridge.store.deliveries import DeliveryStore, static_subscription_id


async def sync_static_subscriptions(store: DeliveryStore, settings: Settings, now: float) -> None:
    """Create or update every configured subscription; delete static ones no longer there."""
    problems: list[str] = []
    wanted: dict[str, Subscription] = {}
    existing = {s.id: s for s in await store.list_subscriptions()}
    for i, cfg in enumerate(settings.subscriptions):
        try:
            check_url(cfg.url, allow_private=settings.delivery.allow_private_targets)
        except TargetRefused as exc:
            problems.append(f"subscriptions.{i}.url: {exc}")
            continue
        sub_id = static_subscription_id(cfg.url)
        old = existing.get(sub_id)
        if cfg.secret is not None:
            secret = cfg.secret.get_secret_value()
            try:
                signing.secret_key(secret)
            except signing.InvalidSecret as exc:
                problems.append(f"subscriptions.{i}.secret: {exc}")
                continue
            secrets: tuple[tuple[str, float | None], ...] = ((secret, None),)
        else:  # generated once and kept across restarts; rotate-secret reveals a new one
            secrets = old.secrets if old else ((signing.new_secret(), None),)
        wanted[sub_id] = Subscription(
            id=sub_id,
            url=cfg.url,
            secrets=secrets,
            event_types=tuple(cfg.event_types),
            sources=tuple(cfg.sources),
            format=cfg.format,
            headers=tuple(sorted(cfg.headers.items())),
            description=cfg.description,
            created_at=old.created_at if old else now,
            static=True,
        )
    if problems:
        raise ConfigError(problems)
    for sub in wanted.values():
        await store.save_subscription(sub)
    for sub_id, sub in existing.items():
        if sub.static and sub_id not in wanted:
            await store.delete_subscription(sub_id)
