"""Run history and `idsync status` against the real servers."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from bson import ObjectId

from tests.conftest import BOTH_TARGETS, Env

pytestmark = pytest.mark.integration


@BOTH_TARGETS
def test_runs_are_recorded_and_status_reports_them(env: Env) -> None:
    env.add_source([ObjectId() for _ in range(5)] + [1.5])
    init = json.loads(env.idsync("init", "--json").stdout)
    assert init["history_created"] is True and init["state_created"] is True
    assert init["ranges_created"] is True
    again = env.idsync("init").stdout
    assert "idsync_runs: exists" in again and "idsync_state: exists" in again
    assert "idsync_ranges: exists" in again
    never = env.idsync("status", "--json", "--max-age", "1h")
    assert never.returncode == 4  # no success yet: stale
    assert env.idsync("run").returncode == 4  # one id rejected: partial
    assert env.idsync("run", "--dry-run").returncode == 4
    failed = env.idsync(
        "run",
        "--connect-timeout",
        "1",
        "--retries",
        "0",
        env={"IDSYNC_MONGO_URI": "mongodb://127.0.0.1:1/x"},
    )
    assert failed.returncode == 1
    rows = env.sql(
        "SELECT command, status, dry_run, inserted, rejected, error FROM idsync_runs ORDER BY id"
    )
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("run", "partial", 0, 5, 1),
        ("run", "partial", 1, 0, 1),
        ("run", "failed", 0, 0, 0),
    ]
    assert "MongoDB unreachable" in rows[2][5]
    done = env.idsync("status", "--json", "--max-age", "1h")
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert [r["status"] for r in report["runs"]] == ["failed", "partial", "partial"]
    assert report["last_success"]["update-cluster-id"]["inserted"] == 5
    assert report["stale"] == []
    text = env.idsync("status")
    assert "last success of update-cluster-id: " in text.stdout and "s ago" in text.stdout
    assert "run-dry" in text.stdout


@BOTH_TARGETS
def test_status_without_history_table_says_init(env: Env) -> None:
    done = env.idsync("status")
    assert done.returncode == 2
    assert "idsync init" in done.stderr


@BOTH_TARGETS
def test_history_never_fails_a_run(env: Env) -> None:
    env.add_source([ObjectId()])
    env.init_table()  # the target only: no idsync_runs
    done = env.idsync("run")
    assert done.returncode == 0
    assert "run history not written" in done.stderr and "idsync init" in done.stderr


def _findings(done: object) -> dict[str, dict[str, str]]:
    report = json.loads(done.stdout)  # type: ignore[attr-defined]
    return {f["check"]: f for f in report["findings"]}


@BOTH_TARGETS
def test_doctor_on_a_healthy_setup(env: Env) -> None:
    env.add_source([ObjectId() for _ in range(3)] + ["name-id"])
    env.idsync("init")
    done = env.idsync("doctor", "--json")
    found = _findings(done)
    mysql_only = {"local-infile": "ok"} if env.kind == "mysql" else {}
    assert {c: f["level"] for c, f in found.items() if c != "change-streams"} == {
        "mongodb": "ok",
        env.kind: "ok",  # the target's server
        "table": "ok",
        "unique-index": "ok",
        "column": "ok",
        "privileges": "ok",
        "state": "ok",
        "history": "ok",
        **mysql_only,
        "foreign-keys": "ok",
        "collection": "ok",
        "id-types": "ok",
        "clock-skew": "ok",
    }
    assert "4 sampled" in found["id-types"]["detail"]
    # FerretDB has no change streams: an optional feature missing is a note, not a warning;
    # --strict counts it.
    assert found["change-streams"]["level"] in ("ok", "note")
    assert done.returncode == 0, found
    strict = env.idsync("doctor", "--strict")
    assert strict.returncode == (0 if found["change-streams"]["level"] == "ok" else 4)


def test_doctor_warns_about_a_risky_column_and_bad_ids(env: Env) -> None:
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(20) CHARACTER SET utf8mb3"
        " COLLATE utf8mb3_general_ci NOT NULL)"
    )
    env.add_source([ObjectId(), 1.5])
    done = env.idsync("doctor", "--json")
    assert done.returncode == 4
    found = _findings(done)
    assert (
        found["unique-index"]["level"] == "warn" and "ALTER TABLE" in found["unique-index"]["fix"]
    )
    detail = found["column"]["detail"]
    assert "too short" in detail and "case-insensitive" in detail and "PAD SPACE" in detail
    assert (
        found["id-types"]["level"] == "warn"
        and "unsupported type: double" in (found["id-types"]["detail"])
    )
    assert found["history"]["level"] == "note"  # an optional feature


@BOTH_TARGETS
def test_doctor_fails_when_a_server_is_down(env: Env) -> None:
    done = env.idsync(
        "doctor", "--connect-timeout", "1", env={"IDSYNC_MONGO_URI": "mongodb://127.0.0.1:1/x"}
    )
    assert done.returncode == 1
    assert "fail  mongodb" in done.stdout and "127.0.0.1:1" in done.stdout
    assert "fail  table" in done.stdout  # no table in this test's database: run init


def _samples(text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            pairs = sorted(sample.labels.items())
            labels = ",".join(f"{k}={v}" for k, v in pairs if k != "idsync_job")
            found[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return found


def test_metrics_file_is_replaced_atomically(env: Env, tmp_path: Path) -> None:
    env.add_source([ObjectId() for _ in range(4)] + [1.5])
    env.idsync("init")
    path = tmp_path / "idsync.prom"
    path.write_text("old contents\n")
    old_inode = path.stat().st_ino
    assert env.idsync("run", "--metrics-file", str(path)).returncode == 4
    assert path.stat().st_ino != old_inode  # renamed over, never rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["idsync.prom"]  # no temporary left behind
    assert "_created" not in path.read_text()  # one series per counter
    values = _samples(path.read_text())
    assert values["idsync_ids_inserted_total"] == 4
    assert values["idsync_last_run_rejected_ids"] == 1
    assert values["idsync_last_run_status{status=partial}"] == 1
    assert values["idsync_last_success_timestamp_seconds"] > 0
    succeeded = values["idsync_last_success_timestamp_seconds"]
    failed = env.idsync(
        "run",
        "--metrics-file",
        str(path),
        "--connect-timeout",
        "1",
        "--retries",
        "0",
        env={"IDSYNC_MONGO_URI": "mongodb://127.0.0.1:1/x"},
    )
    assert failed.returncode == 1
    values = _samples(path.read_text())
    assert values["idsync_last_run_status{status=failed}"] == 1
    # the failure keeps the time of the last success, read from the run history
    assert abs(values["idsync_last_success_timestamp_seconds"] - succeeded) < 5


def test_metrics_are_pushed_to_a_pushgateway(env: Env) -> None:
    """Each command to a group of its own (a PUT replaces its whole group: a check must not
    wipe a run's figures); a dry run claims no success; a URL's user and password are sent as
    basic authentication, never as part of the address."""
    received: list[tuple[str, str, str | None, bytes]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, self.headers["Authorization"], body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env.add_source([ObjectId()])
        env.idsync("init")
        url = f"http://127.0.0.1:{server.server_port}"
        assert env.idsync("run", "--dry-run", "--pushgateway", url).returncode == 0
        assert env.idsync("run", "--pushgateway", url).returncode == 0
        assert env.idsync("check", "--pushgateway", url).returncode == 0
        secured = f"http://pusher:s3cret@127.0.0.1:{server.server_port}"
        done = env.idsync("run", "--pushgateway", secured)
        assert done.returncode == 0 and "not pushed" not in done.stderr, done.stderr
    finally:
        server.shutdown()
    group = "/metrics/job/idsync/command/{}/idsync_job/update-cluster-id".format
    assert [(method, path) for method, path, _, _ in received] == [
        ("PUT", group("dry-run")), ("PUT", group("run")), ("PUT", group("check")),
        ("PUT", group("run")),
    ]  # fmt: skip
    dry, run, check, _ = (_samples(body.decode()) for _, _, _, body in received)
    assert "idsync_last_success_timestamp_seconds" not in dry
    assert run["idsync_ids_inserted_total"] == 1 and run["idsync_last_success_timestamp_seconds"]
    assert "idsync_drift_ids{kind=missing}" in check
    basic = "Basic " + base64.b64encode(b"pusher:s3cret").decode()
    assert [auth for _, _, auth, _ in received] == [None, None, None, basic]


def test_an_unreachable_pushgateway_does_not_fail_the_run(env: Env) -> None:
    env.add_source([ObjectId()])
    env.idsync("init")
    done = env.idsync("run", "--pushgateway", "http://127.0.0.1:1")
    assert done.returncode == 0
    assert "metrics not pushed to http://127.0.0.1:1" in done.stderr


@pytest.mark.parametrize(
    "url", ["http://h:abc", "http://u:s3cr#tPass@h:9091", "not a url", "http://[::1"]
)
def test_an_unusable_pushgateway_url_only_warns(env: Env, url: str) -> None:
    env.add_source([ObjectId()])
    env.idsync("init")
    done = env.idsync("run", "--json", "--pushgateway", url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["inserted"] == 1
    assert "metrics not pushed" in done.stderr
    assert "internal error" not in done.stderr
    assert "s3cr" not in done.stderr


PHASES = ("connect_s", "lock_wait_s", "target_read_s", "source_wait_s", "diff_s", "insert_s")


def test_a_run_says_where_its_time_went(env: Env, tmp_path: Path) -> None:
    """Each phase's seconds, in the JSON report, the text report and the metrics, and the side
    that bounded the run."""
    env.add_source([ObjectId() for _ in range(3000)])
    env.idsync("init")
    path = tmp_path / "idsync.prom"
    done = env.idsync("run", "--json", "--no-log-ids", "--metrics-file", str(path))
    report = json.loads(done.stdout)
    phases = report["phases"]
    assert set(phases) >= set(PHASES), phases
    assert all(isinstance(v, float) and v >= 0 for v in phases.values()), phases
    assert sum(phases.values()) <= report["duration_s"] + 0.01
    assert phases["insert_s"] > 0 and report["bound_by"] in ("source", "target")
    values = _samples(path.read_text())
    assert values["idsync_last_run_phase_seconds{phase=insert}"] == phases["insert_s"]
    text = env.idsync("run", "--no-log-ids").stdout
    assert "time    connect" in text and "bound by" in text, text


def test_a_missing_table_is_named_and_nothing_is_read(env: Env) -> None:
    env.add_source([ObjectId() for _ in range(50)])
    done = env.idsync("run")
    assert done.returncode == 2
    assert "cm_cluster_id.cluster_id: 0 before" in done.stdout and "?/?" not in done.stdout
    assert ": 0 ids" in done.stdout  # the source was asked, not read


def test_a_failure_is_said_once_per_channel(env: Env) -> None:
    """The report names the target even when it cannot be reached; the history's warning does
    not repeat the error the run already gave."""
    env.add_source([ObjectId()])
    url = env.mysql_url.rsplit("/", 1)[0] + "/no_such_database"
    done = env.idsync("run", env={"IDSYNC_MYSQL_URL": url})
    assert done.returncode == 2, done.stderr
    assert "/no_such_database cm_cluster_id.cluster_id" in done.stdout and "?/?" not in done.stdout
    assert "the target is what failed" in done.stderr
    assert done.stderr.count("no_such_database") == 1  # the error's log line alone
