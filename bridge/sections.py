"""What every part of the configuration is made of: a closed, frozen section, and
the check of an http(s) URL. A leaf: settings and the providers' configs build on it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_http_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
