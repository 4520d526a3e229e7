"""Run history and `idsync status` against the real servers."""

from __future__ import annotations

import json

import pytest
from bson import ObjectId

from tests.conftest import Env

pytestmark = pytest.mark.integration


def test_runs_are_recorded_and_status_reports_them(env: Env) -> None:
    env.add_source([ObjectId() for _ in range(5)] + [1.5])
    init = json.loads(env.idsync("init", "--json").stdout)
    assert init["history_created"] is True
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
    assert "last success of update-cluster-id: 0m ago" in text.stdout
    assert "run-dry" in text.stdout


def test_status_without_history_table_says_init(env: Env) -> None:
    done = env.idsync("status")
    assert done.returncode == 2
    assert "idsync init" in done.stderr


def test_history_never_fails_a_run(env: Env) -> None:
    env.add_source([ObjectId()])
    env.init_table()  # the target only: no idsync_runs
    done = env.idsync("run")
    assert done.returncode == 0
    assert "run history not written" in done.stderr and "idsync init" in done.stderr
