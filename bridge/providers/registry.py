"""Every provider the bridge knows, in one table: its config model and how a source of
it is built. Adding a provider is its own module plus a line here (and in the union
below, which pydantic reads to tell configs apart by `provider`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from bridge.providers import fullstory, generic, talkdesk
from bridge.providers.base import Provider
from bridge.providers.config import SourceBase
from bridge.providers.deps import BuildDeps


@dataclass(frozen=True)
class Plugin:
    config: type[SourceBase]
    build: Callable[[str, Any, BuildDeps], Provider]


PLUGINS: dict[str, Plugin] = {
    "fullstory": Plugin(fullstory.FullStorySource, fullstory.build),
    "talkdesk": Plugin(talkdesk.TalkdeskSource, talkdesk.build),
    "generic": Plugin(generic.GenericSource, generic.build),
}

SourceConfig = Annotated[
    fullstory.FullStorySource | talkdesk.TalkdeskSource | generic.GenericSource,
    Field(discriminator="provider"),
]


def build_provider(name: str, cfg: SourceBase, deps: BuildDeps) -> Provider:
    """The provider for one configured source."""
    return PLUGINS[cfg.provider].build(name, cfg, deps)  # type: ignore[attr-defined]
