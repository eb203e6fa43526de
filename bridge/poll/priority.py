"""Which due poll goes first when a source's budget is short. Pure.

Each scheduled poll carries its worth: the chance that the job has ended by then. Among
the due polls of a source, the claim serves the lowest priority key first,

    key = due time - worth * starve_s,

so a poll worth 1 (a new registration, counts complete) goes before one worth 0 that
fell due up to starve_s earlier, and no poll is passed over for longer than starve_s
by later ones: past that, its due time alone puts it first (starvation-free).
"""

from __future__ import annotations

from bridge.poll.duration_policy import Durations, chance_of_end


def poll_worth(
    *,
    age_s: float,
    interval_s: float,
    eta_s: float | None = None,
    durations: Durations | None = None,
) -> float:
    """The chance that a job running at age_s has ended after interval_s more: from its
    progress estimate when it reports one (the share of the estimated time left that
    the interval covers), else from the learned durations or the lag target's prior."""
    if eta_s is not None:
        return 1.0 if eta_s <= 0 else min(1.0, max(0.0, interval_s / eta_s))
    return chance_of_end(durations, age_s, interval_s)


def priority_key(due_s: float, worth: float, starve_s: float) -> float:
    """Lower first. Ties in worth keep the due order."""
    return due_s - min(1.0, max(0.0, worth)) * starve_s
