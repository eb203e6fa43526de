"""When a refusal makes a whole source unhealthy: a pure policy.

A wrong key or client secret shows at once (the token endpoint refuses, or the API
answers 401: the credentials themselves). A 403 may concern one job only (a job id of
another account): it counts against the source once REFUSED_JOBS different jobs in a
row were refused with no good answer between, so one such job never flips the health
of a source whose other jobs are read fine. Any good answer makes the source healthy.
"""

from __future__ import annotations

from dataclasses import dataclass

REFUSED_JOBS = 3


@dataclass(frozen=True, slots=True)
class Refusals:
    """The distinct jobs refused since the source's last good answer (at most
    REFUSED_JOBS of them are kept)."""

    jobs: frozenset[str] = frozenset()


def after_refusal(state: Refusals, job: str, *, credentials: bool) -> tuple[Refusals, bool]:
    """A 401/403 or a token endpoint's refusal → (new state, whether the source is
    unhealthy now). credentials: the refusal names the credentials (401, token endpoint)."""
    jobs = state.jobs if len(state.jobs) >= REFUSED_JOBS else state.jobs | {job}
    return Refusals(jobs), credentials or len(jobs) >= REFUSED_JOBS
