"""The deploy/ examples parse, run commands that idsync accepts, and alert on metrics it exports."""

from __future__ import annotations

import configparser
import json
import re
import runpy
import shlex
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import click
import pytest
import yaml
from prometheus_client import generate_latest

from idsync.cli import cli
from idsync.export import run_metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _yaml(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def _accepted(args: list[str]) -> None:
    """Parse the arguments the way `idsync` would, without running anything."""
    command = cli.get_command(click.Context(cli), args[0])
    assert command is not None, f"no command {args[0]!r}"
    command.make_context(args[0], list(args[1:]))


def test_cronjob() -> None:
    job = _yaml("kubernetes/cronjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "CronJob")
    spec = job["spec"]
    assert len(spec["schedule"].split()) == 5
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    assert container["args"][0] == "run"
    _accepted(container["args"])
    assert container["envFrom"][0]["secretRef"]["name"]


def test_watch_deployment() -> None:
    deployment = _yaml("kubernetes/watch-deployment.yaml")
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "watch"
    _accepted(container["args"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port = container["ports"][0]["containerPort"]
    assert f":{port}" in " ".join(container["args"])


def test_systemd_units() -> None:
    service = configparser.ConfigParser(interpolation=None, strict=True)
    service.read(DEPLOY / "systemd" / "idsync.service")
    assert service["Service"]["Type"] == "oneshot"
    exec_start = shlex.split(service["Service"]["ExecStart"])
    assert exec_start[0].endswith("/idsync")
    _accepted(exec_start[1:])
    assert "4" in service["Service"]["SuccessExitStatus"].split()
    timer = configparser.ConfigParser(interpolation=None, strict=True)
    timer.read(DEPLOY / "systemd" / "idsync.timer")
    assert timer["Timer"]["Unit"] == "idsync.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


def _exported_names() -> set[str]:
    report = {"job": "j", "status": "ok", "started_at": "2026-01-01T00:00:00+00:00",
              "duration_s": 1.0, "exit_code": 0, "missing": 0, "orphans": 0,
              "phases": {"insert_s": 0.5}}  # fmt: skip
    names = set()
    for command in ("run", "check"):
        text = generate_latest(run_metrics(report, command).registry).decode()
        names |= set(re.findall(r"^(idsync_\w+?)(?:\{| )", text, re.MULTILINE))
    return names


@pytest.mark.parametrize("rule", _yaml("prometheus/alerts.yaml")["groups"][0]["rules"])
def test_alert_rules_use_exported_metrics(rule: dict[str, Any]) -> None:
    assert rule["alert"].startswith("Idsync")
    used = set(re.findall(r"idsync_\w+", rule["expr"]))
    assert used and used <= _exported_names(), used - _exported_names()
    assert rule["annotations"]["summary"]


def _exported_labels() -> set[str]:
    report = {"job": "j", "status": "ok", "started_at": "2026-01-01T00:00:00+00:00",
              "duration_s": 1.0, "exit_code": 0, "missing": 0, "orphans": 0,
              "phases": {"insert_s": 0.5}}  # fmt: skip
    labels: set[str] = set()
    for command in ("run", "check"):
        text = generate_latest(run_metrics(report, command).registry).decode()
        labels |= set(re.findall(r"[{,](\w+)=", text))
    return labels


def test_metrics_label_the_job_with_a_name_prometheus_keeps() -> None:
    """`job` is the label Prometheus gives every scraped target (and the Pushgateway its
    group): a series' own `job` would be renamed `exported_job`."""
    labels = _exported_labels()
    assert "idsync_job" in labels and "job" not in labels, labels
    alerts = (DEPLOY / "prometheus" / "alerts.yaml").read_text()
    used = set(re.findall(r"\$labels\.(\w+)", alerts))
    assert used and used <= labels, used - labels


def _dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "idsync.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    queries += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    legends = [t["legendFormat"] for panel in dashboard["panels"] for t in panel["targets"]]
    return queries + legends


def test_every_dashboard_query_names_exported_metrics_and_labels() -> None:
    texts = _dashboard_queries()
    used = {name for text in texts for name in re.findall(r"idsync_\w+", text)}
    exported = _exported_names() | _exported_labels()
    assert used and used <= exported, used - exported
    labels = {name for text in texts for name in re.findall(r"\{\{(\w+)\}\}", text)}
    assert labels <= _exported_labels(), labels - _exported_labels()
    for text in texts:  # every series query is scoped by the job variable
        if text.startswith(("idsync_", "time()", "increase(")):
            assert 'idsync_job=~"$job"' in text, text


def test_manifests_name_the_image_make_image_tags() -> None:
    from idsync.version import __version__

    for name in ("cronjob.yaml", "watch-deployment.yaml"):
        text = (DEPLOY / "kubernetes" / name).read_text()
        assert f"image: localhost/idsync:{__version__}" in text, name
    image_script = (DEPLOY.parent / "dev" / "image").read_text()
    assert 'IMAGE="localhost/idsync:$VERSION"' in image_script


def test_indexed_job_runs_work_in_every_pod() -> None:
    job = _yaml("kubernetes/indexed-job.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] >= spec["parallelism"] > 1 and spec["backoffLimitPerIndex"] >= 1
    container = spec["template"]["spec"]["containers"][0]
    assert container["args"][0] == "work"
    _accepted(container["args"])
    assert container["envFrom"][0]["secretRef"]["name"]


class _Task:
    """Enough of an Airflow operator to read a DAG file without Airflow."""

    made: ClassVar[list[_Task]] = []

    def __init__(self, **kw: Any) -> None:
        self.kw = kw
        self.mapped: list[Any] = []
        self.after: list[_Task] = []
        _Task.made.append(self)

    @classmethod
    def partial(cls, **kw: Any) -> _Task:
        return cls(**kw)

    def expand(self, **kw: list[Any]) -> _Task:
        self.mapped = next(iter(kw.values()))
        return self

    def __rshift__(self, other: _Task) -> _Task:
        other.after.append(self)
        return other


class _Dag:
    def __init__(self, **kw: Any) -> None:
        self.kw = kw

    def __enter__(self) -> _Dag:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_airflow_dag_plans_then_maps_work(monkeypatch: pytest.MonkeyPatch) -> None:
    airflow = types.ModuleType("airflow")
    airflow.DAG = _Dag  # type: ignore[attr-defined]
    bash = types.ModuleType("airflow.operators.bash")
    bash.BashOperator = _Task  # type: ignore[attr-defined]
    for name, module in {"airflow": airflow, "airflow.operators": types.ModuleType("x"),
                         "airflow.operators.bash": bash}.items():  # fmt: skip
        monkeypatch.setitem(sys.modules, name, module)
    _Task.made.clear()
    runpy.run_path(str(DEPLOY / "airflow/idsync_work_dag.py"))
    tasks = {task.kw["task_id"]: task for task in _Task.made}
    assert list(tasks) == ["plan", "work", "check"]
    assert len(tasks["work"].mapped) > 1 and tasks["work"].kw["append_env"] is True
    assert tasks["work"].after == [tasks["plan"]] and tasks["check"].after == [tasks["work"]]
    for task in tasks.values():
        words = shlex.split(task.kw["bash_command"])
        assert words[0] == "idsync"
        _accepted(words[1:])
