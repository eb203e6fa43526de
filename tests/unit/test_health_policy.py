"""When refusals make a source unhealthy (bridge.poll.health): pure, property-tested."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.poll.health import REFUSED_JOBS, Refusals, after_refusal


def test_credentials_refused_show_at_once() -> None:
    """A 401 or a token endpoint's refusal makes the source unhealthy on the first one."""
    assert after_refusal(Refusals(), "w1", credentials=True)[1]


def test_one_forbidden_job_alone_never_flips_the_source() -> None:
    """However often one job is refused with 403, the source stays healthy."""
    state = Refusals()
    for _ in range(100):
        state, unhealthy = after_refusal(state, "w_foreign", credentials=False)
        assert not unhealthy


def test_forbidden_everywhere_does() -> None:
    """403 for REFUSED_JOBS different jobs with no good answer between: unhealthy."""
    state, unhealthy = Refusals(), False
    for i in range(REFUSED_JOBS):
        assert not unhealthy
        state, unhealthy = after_refusal(state, f"w{i}", credentials=False)
    assert unhealthy


@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=50))
def test_unhealthy_exactly_when_enough_jobs_were_refused(jobs: list[str]) -> None:
    """For any run of 403s, the verdict is 'unhealthy' exactly when REFUSED_JOBS distinct
    jobs are among them, and the state stays bounded."""
    state = Refusals()
    for n, job in enumerate(jobs, 1):
        state, unhealthy = after_refusal(state, job, credentials=False)
        assert unhealthy == (len(set(jobs[:n])) >= REFUSED_JOBS)
        assert len(state.jobs) <= REFUSED_JOBS
