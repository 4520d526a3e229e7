"""The whole CLI driven in-process with click's CliRunner: each command is a thin function over
the library, so its exit code and output can be checked without starting a process. Signals and
the real process's exit (``main()``) are tested as subprocesses in test_cli.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from bson import ObjectId
from click.testing import CliRunner, Result

from idsync.cli import COMMANDS, cli
from idsync.version import __version__
from tests.conftest import Env


def invoke(env: Env | None, *args: str) -> Result:
    variables = {}
    if env is not None:
        variables = {"IDSYNC_MONGO_URI": env.mongo_uri, "IDSYNC_MYSQL_URL": env.mysql_url}
    return CliRunner().invoke(cli, list(args), env={**variables, "IDSYNC_CONFIG": ""})


def test_version_and_every_commands_help() -> None:
    shown = invoke(None, "--version").output
    assert shown.splitlines()[0] == f"idsync {__version__}"
    for driver in ("pymongo", "mysqlclient", "psycopg"):
        assert f"{driver} " in shown, shown
    for name in COMMANDS:
        done = invoke(None, name, "--help")
        assert done.exit_code == 0, (name, done.output)
        assert "Usage: cli" in done.output or "Usage:" in done.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    done = invoke(None, "completion", shell)
    assert done.exit_code == 0 and "_IDSYNC_COMPLETE" in done.output, done.output


def test_version_loads_no_driver() -> None:
    """`idsync --version` answers at once: no driver is imported to say what it is."""
    code = (
        "import sys; from click.testing import CliRunner; from idsync.cli import cli;"
        " CliRunner().invoke(cli, ['--version']);"
        " print(sorted(m for m in ('pymongo', 'MySQLdb', 'psycopg') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_flag_click_refuses_is_a_usage_error() -> None:
    assert invoke(None, "run", "--batch-size", "many").exit_code == 2
    assert invoke(None, "watch", "--mode", "sometimes").exit_code == 2


def test_a_bad_url_is_a_config_error_before_any_server_is_asked() -> None:
    done = invoke(None, "run", "--json", "--mysql-url", "mysql://u:s3cretpass@db:port/maas")
    assert done.exit_code == 2
    report = json.loads(done.stdout)
    assert report["status"] == "failed" and report["exit_code"] == 2
    assert "s3cretpass" not in done.output


def test_a_bad_flag_value_names_the_flag() -> None:
    done = invoke(None, "run", "--json", "--batch-size", "0")
    assert done.exit_code == 2 and "--batch-size" in json.loads(done.stdout)["error"]


def test_status_max_age_must_be_a_duration() -> None:
    assert invoke(None, "status", "--max-age", "soon").exit_code == 2


def test_init_run_check_status_doctor_in_process(env: Env) -> None:
    ids = [ObjectId() for _ in range(50)]
    env.add_source(ids)
    assert invoke(env, "init", "--json").exit_code == 0
    dry = invoke(env, "run", "--dry-run", "--json")
    assert (dry.exit_code, json.loads(dry.stdout)["missing"]) == (0, 50)
    done = invoke(env, "run", "--json", "--no-log-ids")
    assert (done.exit_code, json.loads(done.stdout)["inserted"]) == (0, 50), done.output
    assert sorted(env.target_ids()) == sorted(str(i) for i in ids)
    checked = invoke(env, "check", "--json")
    assert (checked.exit_code, json.loads(checked.stdout)["status"]) == (0, "ok")
    exact = invoke(env, "check", "--exact", "--json")
    assert json.loads(exact.stdout)["exact"] is True
    status = invoke(env, "status", "--json", "--max-age", "1h")
    assert status.exit_code == 0 and json.loads(status.stdout)["stale"] == []
    doctor = invoke(env, "doctor", "--json")
    assert doctor.exit_code in (0, 4), doctor.output  # warnings depend on the server's setup
    assert invoke(env, "jobs").exit_code == 0


@pytest.mark.parametrize("flag", ["--exact", "--fast"])
def test_run_check_after_takes_the_same_exact_flag_as_check(env: Env, flag: str) -> None:
    env.add_source([ObjectId() for _ in range(20)])
    env.init_table()
    done = invoke(env, "run", "--json", "--no-log-ids", "--check-after", flag)
    report = json.loads(done.stdout)
    assert done.exit_code == 0 and report["check"]["exact"] is (flag == "--exact")


def test_a_dry_run_lists_every_missing_id(env: Env, tmp_path: Path) -> None:
    ids = [ObjectId() for _ in range(60)]
    env.add_source(ids)
    env.init_table()
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", (str(ids[0]),))
    listed = tmp_path / "missing.txt"
    done = invoke(env, "run", "--dry-run", "--json", "--list-missing", str(listed))
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["missing"] == 59
    assert sorted(listed.read_text().split()) == sorted(str(i) for i in ids[1:])


def test_list_missing_in_a_directory_that_is_not_there_is_a_usage_error(
    env: Env, tmp_path: Path
) -> None:
    env.add_source([ObjectId() for _ in range(5)])
    env.init_table()
    nowhere = tmp_path / "no" / "such" / "dir" / "missing.txt"
    done = invoke(env, "run", "--json", "--no-log-ids", "--list-missing", str(nowhere))
    assert done.exit_code == 2, done.output
    report = json.loads(done.stdout)
    assert report["status"] == "failed" and str(nowhere.parent) in report["error"]
    assert env.target_ids() == []  # found before anything was read or written


def test_list_missing_dash_is_refused_not_a_file_named_dash(env: Env, tmp_path: Path) -> None:
    env.add_source([ObjectId() for _ in range(5)])
    env.init_table()
    done = CliRunner().invoke(
        cli,
        ["run", "--json", "--list-missing", "-"],
        env={"IDSYNC_MONGO_URI": env.mongo_uri, "IDSYNC_MYSQL_URL": env.mysql_url,
             "IDSYNC_CONFIG": ""},
    )  # fmt: skip
    assert done.exit_code == 2, done.output
    assert "--list-missing" in json.loads(done.stdout)["error"]
    assert env.target_ids() == []


def test_list_missing_on_a_full_device_fails_and_says_so(env: Env) -> None:
    ids = [ObjectId() for _ in range(3000)]
    env.add_source(ids)
    env.init_table()
    done = invoke(env, "run", "--json", "--no-log-ids", "--list-missing", "/dev/full")
    assert done.exit_code == 1, done.output
    report = json.loads(done.stdout)
    assert report["status"] == "failed" and "/dev/full" in report["error"], report
    assert "internal error" not in report["error"]


def test_list_missing_streams_into_a_pipe(env: Env, tmp_path: Path) -> None:
    """A named pipe (or /dev/stdout into a pipe) cannot seek: the list still goes through."""
    ids = [ObjectId() for _ in range(700)]
    env.add_source(ids)
    env.init_table()
    fifo = tmp_path / "ids.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    done = invoke(env, "run", "--json", "--no-log-ids", "--list-missing", str(fifo))
    out, _ = reader.communicate(timeout=60)
    assert done.exit_code == 0, done.output
    assert sorted(out.split()) == sorted(str(i) for i in ids)


def test_a_dry_run_lists_only_what_the_run_would_store(env: Env, tmp_path: Path) -> None:
    """Ids the column's collation would take for equal to another are rejected, not missing:
    neither listed nor sampled; one equal to another new id does not call that one stored."""
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) CHARACTER SET utf8mb4"
        " COLLATE utf8mb4_general_ci NOT NULL UNIQUE)"
    )
    env.sql("INSERT INTO cm_cluster_id VALUES ('ABC')")
    env.add_source(["abc", "Xy", "xY", "fine"])
    listed = tmp_path / "missing.txt"
    done = invoke(env, "run", "--dry-run", "--json", "--list-missing", str(listed))
    report = json.loads(done.stdout)
    assert done.exit_code == 4, done.output
    assert report["missing"] == 2 and sorted(report["missing_samples"]) == ["Xy", "fine"]
    assert sorted(listed.read_text().split()) == ["Xy", "fine"]
    reasons = {r["id"]: r["reason"] for r in report["rejected_samples"]}
    assert reasons["abc"] == "collides with stored value 'ABC' under the column's collation"
    assert "stored value" not in reasons["xY"] and "'Xy'" in reasons["xY"], reasons


def test_list_missing_to_a_pipe_no_one_reads_is_refused_at_once(env: Env, tmp_path: Path) -> None:
    env.add_source([ObjectId() for _ in range(5)])
    env.init_table()
    fifo = tmp_path / "nobody.fifo"
    os.mkfifo(fifo)
    done = invoke(env, "run", "--json", "--no-log-ids", "--list-missing", str(fifo))
    assert done.exit_code == 2 and "no one reads" in json.loads(done.stdout)["error"]
    assert env.target_ids() == []


def test_list_missing_into_a_device_and_a_file_in_place(env: Env, tmp_path: Path) -> None:
    """A dry run into /dev/null; a file keeps its old list until the run ends, then the new."""
    ids = [ObjectId() for _ in range(30)]
    env.add_source(ids)
    env.init_table()
    assert invoke(env, "run", "--dry-run", "--list-missing", "/dev/null").exit_code == 0
    listed = tmp_path / "ids.txt"
    listed.write_text("an older list\n")
    done = invoke(env, "run", "--no-log-ids", "--list-missing", str(listed))
    assert done.exit_code == 0, done.output
    assert sorted(listed.read_text().split()) == sorted(str(i) for i in ids)
    assert [p.name for p in tmp_path.iterdir()] == ["ids.txt"]  # no temporary left behind


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_before_the_command_is_ready_is_one_failed_report(
    signum: signal.Signals,
) -> None:
    """The command's imports take a moment: a signal then is held, then said once."""
    code = (
        "import os, signal, sys; from idsync import entry;"
        " signal.signal(signal.SIGINT, signal.default_int_handler); entry.hold_signals();"
        f" os.kill(os.getpid(), {int(signum)});"
        " sys.argv[:] = ['idsync', 'status', '--json']; from idsync.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    message = f"interrupted ({signum.name}) before the start"
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["error"] == message
    assert done.stderr.splitlines() == [f"idsync: {message}"]
