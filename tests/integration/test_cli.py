"""The `idsync` command in a fresh process: exit codes, the JSON report, logs, secrets."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from bson import ObjectId

from tests.conftest import BOTH_TARGETS, Env

pytestmark = pytest.mark.integration

REPORT_KEYS = {
    "job",
    "status",
    "source_ids",
    "target_ids_before",
    "missing",
    "inserted",
    "rejected",
    "rejected_samples",
    "dry_run",
    "duration_s",
}


def test_run_json_report_and_original_log_lines(env: Env) -> None:
    oids = [ObjectId() for _ in range(30)]
    env.add_source(oids)
    assert env.idsync("init").returncode == 0
    done = env.idsync("run", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # exactly one JSON object
    assert set(report) >= REPORT_KEYS
    assert (report["status"], report["inserted"], report["missing"]) == ("ok", 30, 30)
    assert "[update-cluster-id] start" in done.stderr
    assert f"[update-cluster-id] Inserted cluster_id: {oids[0]}" in done.stderr
    assert "[update-cluster-id] job end" in done.stderr
    again = json.loads(env.idsync("run", "--json").stdout)
    assert (again["inserted"], again["target_ids_before"]) == (0, 30)


def test_rejected_ids_exit_4(env: Env) -> None:
    env.add_source(["ok-id", 1.5])
    env.idsync("init")
    done = env.idsync("run", "--json", "--no-log-ids")
    assert done.returncode == 4
    report = json.loads(done.stdout)
    assert report["status"] == "partial"
    assert report["rejected_samples"] == [
        {"id": "double(1.5)", "reason": "unsupported type: double"}
    ]


def test_mongodb_down_fails_loudly_and_writes_nothing(env: Env) -> None:
    env.idsync("init")
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES ('kept')")
    # Bounded: a run that hung on a default timeout would exceed the process timeout and fail.
    done = env.idsync(
        "run",
        "--json",
        "--connect-timeout",
        "1",
        env={"IDSYNC_MONGO_URI": "mongodb://127.0.0.1:1/maas"},
        timeout=60,
    )
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["status"] == "failed" and "127.0.0.1:1" in report["error"]
    # Said once on stderr (the log's error line), not again by the CLI.
    said = [line for line in done.stderr.splitlines() if "error: MongoDB unreachable" in line]
    assert len(said) == 1 and "127.0.0.1:1" in said[0], done.stderr
    assert "idsync: " not in done.stderr
    assert "No clusters found" not in done.stderr
    assert env.target_ids() == ["kept"]


def test_passwords_never_appear(env: Env) -> None:
    password = "s3cr3t-P@ss:w/rd"
    quoted = "s3cr3t-P%40ss%3Aw%2Frd"
    url = env.mysql_url.replace("idsync:idsync@", f"idsync:{quoted}@")
    for args in (["run", "--json"], ["run"], ["init"]):
        done = env.idsync(*args, env={"IDSYNC_MYSQL_URL": url})
        assert done.returncode == 1, done.stderr
        for secret in (password, quoted):
            assert secret not in done.stdout and secret not in done.stderr
        assert "Access denied" in done.stderr


def test_config_errors_exit_2_before_any_query(env: Env, tmp_path: Path) -> None:
    config = tmp_path / "idsync.toml"
    config.write_text(
        '[jobs.evil]\ncollection = "c"\ncolumn = "id"\ntable = "x`; DROP TABLE cm_cluster_id; --"\n'
    )
    done = env.idsync("run", "--config", str(config), "--job", "evil")
    assert done.returncode == 2
    assert "invalid table" in done.stderr
    assert env.idsync("run", "--job", "nope").returncode == 2
    assert env.idsync("run", "--bogus-flag").returncode == 2
    done = env.idsync("run", env={"IDSYNC_MYSQL_URL": "mysql://u:pw@h:port/db"})
    assert done.returncode == 2 and "pw" not in done.stderr


def test_a_job_that_names_too_little_is_a_config_error(env: Env, tmp_path: Path) -> None:
    env.add_source([ObjectId() for _ in range(9)], collection="other")
    env.idsync("init")
    config = tmp_path / "idsync.toml"
    config.write_text('[jobs.x]\ncollection = "other"\n')
    listed = env.idsync("jobs", "--config", str(config))
    assert listed.returncode == 2
    assert "[jobs.x] must name" in listed.stderr and "column, table" in listed.stderr
    assert "cm_cluster_id" not in listed.stdout
    done = env.idsync("run", "--dry-run", "--json", "--config", str(config), "--job", "x")
    assert done.returncode == 2
    assert "column, table" in json.loads(done.stdout)["error"]
    assert env.target_ids() == []


def test_init_creates_an_exact_table_and_never_alters(env: Env) -> None:
    first = env.idsync("init", "--json")
    assert first.returncode == 0
    info = json.loads(first.stdout)
    assert info["created"] is True and info["unique_index"] is True
    assert info["collation"] in ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")
    again = json.loads(env.idsync("init", "--json").stdout)
    assert again["created"] is False


def test_init_needs_no_mongodb(env: Env) -> None:
    done = env.idsync("init", env={"IDSYNC_MONGO_URI": ""})
    assert done.returncode == 0, done.stderr
    assert "cm_cluster_id" in env.tables()


def test_json_logs(env: Env) -> None:
    env.add_source([ObjectId()])
    env.idsync("init")
    done = env.idsync("run", "--log-format", "json")
    assert done.returncode == 0
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines[0]["message"] == "[update-cluster-id] start"
    assert {"ts", "level", "message"} <= set(lines[-1])
    assert lines[-1]["job"] == "update-cluster-id"


def test_json_logs_of_a_failure_are_json_and_say_it_once(env: Env) -> None:
    mongo = {"IDSYNC_MONGO_URI": "mongodb://127.0.0.1:1/maas"}
    for command in ("run", "check"):
        args = (command, "--log-format", "json", "--connect-timeout", "1", "--retries", "1")
        done = env.idsync(*args, env=mongo, timeout=60)
        assert done.returncode == 1, done.stderr
        lines = [json.loads(line) for line in done.stderr.splitlines()]  # nothing but JSON
        errors = [line for line in lines if line.get("event") == "error"]
        assert len(errors) == 1 and "127.0.0.1:1" in errors[0]["message"], lines


@pytest.mark.parametrize("command", ["status", "init", "watch", "doctor"])
def test_every_commands_failure_is_said_once_in_the_logs_format(env: Env, command: str) -> None:
    """A target that refuses the password: `status`, `init` and `watch` (which tries three times,
    then gives up) fail with one error line on stderr, JSON like every other line, and one
    JSON object on stdout; `doctor` says on stderr that it found failures."""
    url = env.mysql_url.replace("idsync:idsync@", "idsync:wrong-s3cret@")
    args = (command, "--json", "--log-format", "json")
    done = env.idsync(*args, env={"IDSYNC_MYSQL_URL": url}, timeout=120)
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # nothing but JSON
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1 and "127.0.0.1:" in errors[0]["message"], lines
    assert errors[0]["job"] == "update-cluster-id", errors
    assert command == "doctor" or json.loads(done.stdout)["status"] == "failed"
    assert "wrong-s3cret" not in done.stdout + done.stderr


def test_dry_run_cli(env: Env) -> None:
    env.add_source([ObjectId(), ObjectId()])
    env.idsync("init")
    report = json.loads(env.idsync("run", "--dry-run", "--json").stdout)
    assert (report["dry_run"], report["missing"], report["inserted"]) == (True, 2, 0)
    assert env.target_ids() == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", "100001"], "--batch-size"),
        (["--read-batch-size", "0"], "--read-batch-size"),
        (["--connect-timeout", "nan"], "--connect-timeout"),
        (["--lock-timeout", "-1"], "--lock-timeout"),
        (["--retries", "-1"], "--retries"),
        (["--socket-timeout", "inf"], "--socket-timeout"),
    ],
)
def test_bad_flag_values_exit_2_naming_the_flag(env: Env, args: list[str], named: str) -> None:
    env.add_source([ObjectId()])
    env.idsync("init")
    done = env.idsync("run", "--json", *args)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and named in json.loads(done.stdout)["error"]
    assert env.target_ids() == []


def test_a_setting_of_the_wrong_type_exits_2_naming_it(env: Env, tmp_path: Path) -> None:
    config = tmp_path / "idsync.toml"
    config.write_text("[settings]\nmongo_uri = 5\n")
    done = env.idsync("run", "--config", str(config), env={"IDSYNC_MONGO_URI": ""})
    assert done.returncode == 2, done.stderr
    assert "mongo_uri" in done.stderr and "internal error" not in done.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["status", "--limit", "0"], "--limit"),
        (["status", "--limit", "-1"], "--limit"),
        (["status", "--max-age", "soon"], "--max-age"),
        (["run", "--max-inserts", "inf%"], "--max-inserts"),
        (["run", "--max-inserts", "nan%"], "--max-inserts"),
    ],
)
def test_other_flag_values_exit_2_naming_the_flag(env: Env, args: list[str], named: str) -> None:
    env.idsync("init")
    done = env.idsync(*args)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr


@pytest.mark.parametrize(
    ("uri_tail", "said"),
    [
        ("?tls=true&tlsCAFile=/nonexistent/ca.pem", "tlscafile"),
        ("?tls=true&tlsCAFile=/", "tlscafile"),
        ("x%00y", "database"),
    ],
)
def test_a_mongodb_uri_naming_what_cannot_be_used_is_a_config_error(
    env: Env, uri_tail: str, said: str
) -> None:
    """A file the URI names that cannot be read, or a database name the driver refuses: the
    user's to fix (exit 2, one JSON object, a failed history row), never an internal error."""
    env.idsync("init")
    base = env.mongo_uri if uri_tail.startswith("?") else env.mongo_uri.rsplit("/", 1)[0] + "/"
    for command in ("run", "check"):
        done = env.idsync(command, "--json", env={"IDSYNC_MONGO_URI": base + uri_tail})
        assert done.returncode == 2, done.stderr
        report = json.loads(done.stdout)
        assert report["status"] == "failed" and said in report["error"].lower()
        assert "internal error" not in done.stderr and "unexpected" not in done.stderr
    rows = env.sql("SELECT command, status, exit_code FROM idsync_runs ORDER BY id")
    assert rows == [("run", "failed", 2), ("check", "failed", 2)]


def test_a_config_file_that_is_not_utf8_is_a_config_error(env: Env, tmp_path: Path) -> None:
    config = tmp_path / "idsync.toml"
    config.write_bytes(b"\xff\xfe[settings]\n")
    done = env.idsync("check", "--config", str(config), "--json")
    assert done.returncode == 2, done.stderr
    assert "internal error" not in done.stderr
    assert str(config) in json.loads(done.stdout)["error"]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--batch-size", "1e3"],
        ["run", "--max-inserts", "-1"],
        ["check", "--retries", "many"],
        ["run", "--no-such-flag"],
    ],
)
def test_a_flag_click_refuses_still_gives_one_json_object(env: Env, args: list[str]) -> None:
    done = env.idsync(*args, "--json")
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout)
    assert (report["status"], report["exit_code"]) == ("failed", 2)
    assert args[1] in report["error"]


@BOTH_TARGETS
def test_init_names_the_table_as_the_server_does(env: Env) -> None:
    """PostgreSQL's tables live in a schema: init says which."""
    done = env.idsync("init")
    assert done.returncode == 0, done.stderr
    database = env.mysql_url.rsplit("/", 1)[1]
    schema = ".public" if env.kind == "postgres" else ""
    where = f"{database}{schema}.cm_cluster_id"
    assert done.stdout.startswith(f"{where}: created"), done.stdout
    assert json.loads(env.idsync("init", "--json").stdout)["table"] == where


def test_every_phase_is_reported_even_when_it_took_no_time(env: Env) -> None:
    env.add_source([ObjectId()])
    env.idsync("init")
    assert env.idsync("run", "--no-log-ids").returncode == 0
    again = json.loads(env.idsync("run", "--json", "--no-log-ids").stdout)  # nothing to insert
    dry = json.loads(env.idsync("run", "--json", "--dry-run").stdout)
    phases = ["connect_s", "lock_wait_s", "target_read_s", "source_wait_s", "diff_s", "insert_s",
              "delete_s"]  # fmt: skip
    assert list(again["phases"]) == phases and list(dry["phases"]) == phases


def test_json_logs_on_a_terminal_get_no_progress_bar(env: Env) -> None:
    """stderr a terminal and --log-format json: every line JSON, no bar drawn between them."""
    env.add_source([ObjectId() for _ in range(50)])
    env.idsync("init")
    leader, follower = pty.openpty()
    variables = {**os.environ, "IDSYNC_MONGO_URI": env.mongo_uri, "IDSYNC_MYSQL_URL": env.mysql_url}
    variables.pop("IDSYNC_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "idsync", "run", "--log-format", "json", "--no-log-ids"],
        env=variables, stdout=subprocess.PIPE, stderr=follower, text=True,
    )  # fmt: skip
    os.close(follower)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once the process has closed the terminal
        while chunk := os.read(leader, 65536):
            shown += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    lines = [line for line in shown.decode().splitlines() if line.strip()]
    assert lines and all(json.loads(line)["level"] for line in lines), shown
