"""What the daemon hands a provider plugin to build its provider for one source."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridge.clock import Clock
from bridge.providers.http import HttpClient
from bridge.providers.oauth2 import TokenCache


@dataclass(frozen=True)
class BuildDeps:
    http: HttpClient  # the only upstream HTTP client
    tokens: TokenCache  # OAuth tokens, shared fleet-wide
    clock: Clock
    # a wait for a slot of the source's token budget, per source name
    token_throttle: Callable[[str], Callable[[], Awaitable[None]]]
