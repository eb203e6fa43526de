"""The generic provider: JSON paths, its config checks, and the parse of an answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import ConfigError, TransientUpstreamError
from bridge.model import Counts, Outcome
from bridge.providers.generic import (
    GenericProvider,
    GenericSource,
    outcome_with_counts,
    succeeded_of,
)
from bridge.providers.jsonpath import BadPath, get_path, parse_path
from bridge.settings import load_settings

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_ABC0123456789-", min_size=1, max_size=8)


@given(st.lists(st.one_of(names, st.integers(0, 5)), min_size=1, max_size=6), st.integers())
def test_a_path_finds_what_was_put_there(steps: list[Any], leaf: int) -> None:
    """Build a document along a path; the path, written out and parsed, reads the leaf."""
    if isinstance(steps[0], int):
        steps = ["root", *steps]
    doc: Any = leaf
    for step in reversed(steps):
        doc = {step: doc} if isinstance(step, str) else [None] * step + [doc]
    text = "".join(f".{s}" if isinstance(s, str) else f"[{s}]" for s in steps).lstrip(".")
    assert parse_path(text) == tuple(steps)
    assert get_path(doc, parse_path(text)) == leaf


@given(
    st.recursive(
        st.none() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_reading_never_raises(doc: Any) -> None:
    """Whatever the document, a path reads a value or None."""
    for path in ("a", "a.b", "a[0]", "a[3].b[1]", "job.status"):
        get_path(doc, parse_path(path))


@pytest.mark.parametrize("bad", ["", " a", "a..b", "a.", ".a", "a[x]", "[0]", "a[0"])
def test_bad_paths_are_refused(bad: str) -> None:
    """Paths that are not name(.name)* with [n] after a name are refused."""
    with pytest.raises(BadPath):
        parse_path(bad)


def source(**kw: Any) -> GenericSource:
    fields: dict[str, Any] = {
        "provider": "generic",
        "url": "https://api.example.com/jobs/{job_id}",
        "status_path": "job.state",
        "terminal": {"DONE": "completed", "ERR": "failed"},
        **kw,
    }
    return GenericSource.model_validate(fields)


def test_an_answer_is_read_by_the_configured_paths() -> None:
    """Status, counts (numbers or numeric strings) and times from their paths; a status
    outside the terminal map keeps the job running; no status is a malformed answer."""
    p = GenericProvider(
        source(
            total_path="counts.total",
            succeeded_path="counts.ok",
            failed_path="counts.bad[0]",
            finished_path="job.ended",
        )
    )
    done = p.parse({"job": {"state": "DONE", "ended": "2026-11-25T10:00:00Z"},
                    "counts": {"total": "10", "ok": 9, "bad": [1]}})  # fmt: skip
    assert done.finished_at == "2026-11-25T10:00:00Z"
    assert done.outcome is Outcome.COMPLETED_WITH_ERRORS  # DONE, yet one record failed
    assert (done.counts.total, done.counts.succeeded, done.counts.failed) == (10, 9, 1)
    running = p.parse({"job": {"state": "WHATEVER_NEW"}, "counts": {"total": True}})
    assert running.outcome is None and running.counts.total is None
    for body in ({}, {"job": {"state": {"nested": 1}}}, [], "text"):
        with pytest.raises(TransientUpstreamError, match=r"job\.state"):
            p.parse(body)


async def test_urls_and_static_auth() -> None:
    """{job_id} and {kind} are filled in quoted; query parameters appended; each static
    auth scheme gives its header, and extra headers go along."""
    p = GenericProvider(
        source(
            url="https://api.example.com/{kind}/jobs/{job_id}?v=2",
            kinds=["ingest", "query"],
            query={"fields": "state,counts"},
            auth="basic",
            username="me",
            password="pw",
            headers={"X-Team": "data"},
        )
    )
    assert p.kinds == ("ingest", "query")
    assert p.job_url("ingest", "a/b c") == (
        "https://api.example.com/ingest/jobs/a%2Fb%20c?v=2&fields=state%2Ccounts"
    )
    headers = await p.auth_headers()
    assert headers["Authorization"] == "Basic bWU6cHc=" and headers["X-Team"] == "data"
    keyed = GenericProvider(source(auth="header", auth_header="X-Api-Key", secret="k"))
    assert (await keyed.auth_headers())["X-Api-Key"] == "k"
    assert not await keyed.on_unauthorized({})
    assert GenericProvider(source()).kinds == ("job",)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('url = "https://x.example.com/jobs"', "sources.g.url: must hold {job_id}"),
        ('url = "ftp://x.example.com/{job_id}"', "sources.g.url: must be an http(s) URL"),
        ('url = "https://x.example.com/{kind}/{job_id}"', "sources.g.kinds: the url holds {kind}"),
        ('url = "https://x.example.com/{jobid}/{job_id}"', "sources.g.url: {jobid} is not a"),
        ('auth = "bearer"', "sources.g.token: required with auth = 'bearer'"),
        ('auth = "oauth2"', "sources.g.token_url: required with auth = 'oauth2'"),
        ('status_path = "a..b"', "sources.g.status_path: a path is names joined by dots"),
        ('terminal = { DONE = "finished" }', "sources.g.terminal.DONE"),
        ("terminal = {}", "sources.g.terminal"),
        ('auth = "bearer"\ntoken = "t"\nheaders = { Authorization = "x" }', "sources.g.headers"),
        ('headers = { Host = "evil" }', "sources.g.headers"),
        ('auth = "header"\nauth_header = "Host"\nsecret = "s"', "sources.g.auth_header"),
        ('auth = "bearer"\ntoken = "a\\r\\nX-Evil: 1"', "sources.g.token: control characters"),
        ('processed_path = "p"\nsucceeded_path = "s"\nfailed_path = "f"', "not both"),
        ('processed_path = "p"', "processed_path: needs failed_path"),
    ],
)
def test_a_bad_generic_config_fails_at_start_naming_the_key(
    tmp_path: Path, extra: str, expected: str
) -> None:
    """Each mistake is a config error that names the key (never the secret)."""
    base = {
        "url": 'url = "https://x.example.com/{job_id}"',
        "status_path": 'status_path = "state"',
        "terminal": 'terminal = { DONE = "completed" }',
    }
    key = extra.split(" ", 1)[0]
    lines = [v for k, v in base.items() if k != key]
    path = tmp_path / "g.toml"
    path.write_text('[sources.g]\nprovider = "generic"\n' + "\n".join([*lines, extra]) + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert any(expected in p for p in info.value.problems), info.value.problems


EXAMPLES = Path(__file__).parents[2] / "config" / "generic"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_the_example_configs_are_valid(tmp_path: Path, example: str) -> None:
    """Each shipped example passes `config check` once its secret is given."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    text = (EXAMPLES / example).read_text()
    name = text.split("[sources.", 1)[1].split("]", 1)[0]
    for key in ("token", "client_secret"):
        (secrets / f"bridge_sources__{name}__{key}").write_text("s3cret-value")
    settings = load_settings(EXAMPLES / example, secrets_dir=secrets)
    assert settings.sources[name].provider == "generic"


counts_or_none = st.one_of(st.none(), st.integers(0, 10**6))


@given(
    outcome=st.one_of(st.none(), st.sampled_from(list(Outcome))),
    failed=counts_or_none,
    processed=counts_or_none,
)
def test_counts_refine_the_outcome_and_the_successes(
    outcome: Outcome | None, failed: int | None, processed: int | None
) -> None:
    """Completed with failed records is completed with errors, and nothing else changes;
    succeeded is processed less failed when both are known and consistent."""
    refined = outcome_with_counts(outcome, Counts(total=None, succeeded=None, failed=failed))
    if outcome is Outcome.COMPLETED and failed:
        assert refined is Outcome.COMPLETED_WITH_ERRORS
    else:
        assert refined is outcome
    got = succeeded_of(processed, failed)
    if processed is None or failed is None or failed > processed:
        assert got is None
    else:
        assert got == processed - failed and got + failed == processed


def shipped(tmp_path: Path, example: str) -> GenericProvider:
    """The provider a shipped example config builds (its secrets given)."""
    secrets = tmp_path / f"secrets-{example}"  # each its own: a file names a source
    secrets.mkdir()
    text = (EXAMPLES / example).read_text()
    name = text.split("[sources.", 1)[1].split("]", 1)[0]
    for key in ("token", "client_secret"):
        (secrets / f"bridge_sources__{name}__{key}").write_text("s3cret-value")
    cfg = load_settings(EXAMPLES / example, secrets_dir=secrets).sources[name]
    assert isinstance(cfg, GenericSource)
    return GenericProvider(cfg)


def test_the_shipped_examples_report_failures_as_such(tmp_path: Path) -> None:
    """HubSpot DONE with 2 errors is completed with errors; Salesforce's processed count
    holds its failures: 100 processed, 2 failed is 98 succeeded."""
    hubspot = shipped(tmp_path, "hubspot-import.toml")
    hs = hubspot.parse(
        {
            "state": "DONE",
            "metadata": {"counters": {"TOTAL_ROWS": 100, "CREATED_OBJECTS": 98, "ERRORS": 2}},
        }
    )
    assert hs.outcome is Outcome.COMPLETED_WITH_ERRORS
    salesforce = shipped(tmp_path, "salesforce-bulk-ingest.toml")
    sf = salesforce.parse(
        {"state": "JobComplete", "numberRecordsProcessed": 100, "numberRecordsFailed": 2}
    )
    assert (sf.counts.succeeded, sf.counts.failed) == (98, 2)
    assert sf.outcome is Outcome.COMPLETED_WITH_ERRORS
    clean = salesforce.parse(
        {"state": "JobComplete", "numberRecordsProcessed": 100, "numberRecordsFailed": 0}
    )
    assert clean.outcome is Outcome.COMPLETED and clean.counts.succeeded == 100
