"""`run --workers` under faults: one worker's target connection killed by the server mid-range.
The range it worked is retried on its own (a transient error), or the run fails clearly; either
way nothing is lost or stored twice, and a run after it ends exact."""

from __future__ import annotations

import json
import time

import pytest
from bson import ObjectId

from idsync.mysql.dialect import run_lock_name
from tests.conftest import BOTH_TARGETS, Env
from tests.fault.conftest import load_ids, reaped, spawn_cli, wait_for
from tests.fault.toxiproxy import Proxy, reachable

pytestmark = pytest.mark.fault

_RANGES = ("--workers", "3", "--range-reads", "always")  # the test servers read no range by index


def _kill_a_worker(env: Env) -> int:
    """Kill one of the run's target connections that does not hold its lock; how many."""
    if env.kind == "mysql":
        [(database,)] = env.sql("SELECT DATABASE()")
        lock = run_lock_name(str(database), "cm_cluster_id", "cluster_id")
        rows = env.sql(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE()"
            " AND ID <> CONNECTION_ID() AND ID <> COALESCE(IS_USED_LOCK(%s), 0)",
            (lock,),
        )
        for (conn_id,) in rows[:1]:
            env.sql(f"KILL CONNECTION {int(conn_id)}")
        return len(rows[:1])
    rows = env.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name LIKE 'idsync %%' AND datname = current_database()"
        " AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory') LIMIT 1"
    )
    return sum(1 for (done,) in rows if done)


@BOTH_TARGETS
@pytest.mark.parametrize("command", ["run", "check"])
def test_a_worker_s_connection_killed_mid_range_loses_nothing(env: Env, command: str) -> None:
    ids = sorted(str(ObjectId()) for _ in range(40_000))
    load_ids(env.mongo_uri, [ObjectId(text) for text in ids])
    env.init_table()
    if command == "check":  # a table to compare, all but a few
        cur = env.mysql.cursor()
        cur.executemany("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)",
                        [(text,) for text in ids[5:]])  # fmt: skip
        if env.kind == "mysql":
            env.mysql.commit()
    args: tuple[str, ...] = (command, "--json", *_RANGES, "--retries", "3")
    args += ("--no-log-ids", "--batch-size", "200") if command == "run" else ("--exact",)
    with reaped(spawn_cli(env.mongo_uri, env.mysql_url, *args)) as proc:
        if command == "run":
            wait_for(lambda: proc.poll() is not None or len(env.target_ids()) > 2_000,
                     "the first batches")  # fmt: skip
        killed = 0
        deadline = time.monotonic() + 60
        while proc.poll() is None and not killed and time.monotonic() < deadline:
            killed = _kill_a_worker(env)  # the workers' connections come and go with ranges
            time.sleep(0.02)
        out, err = proc.communicate(timeout=300)
    assert "Traceback" not in err, err[-2000:]
    report = json.loads(out)
    if command == "check":  # drift found (exit 4), or failed clearly (exit 1)
        assert proc.returncode in (1, 4), err[-1000:]
        if proc.returncode == 4:
            assert (report["missing"], report["orphans"]) == (5, 0), report
            assert not killed or report["retried"], report
        else:
            assert report["status"] == "failed" and report["error"], report
        return
    if proc.returncode != 0:  # failed clearly: a run after it ends exact
        assert proc.returncode == 1 and report["status"] == "failed", report
    rows = env.target_ids()
    assert len(rows) == len(set(rows)) and set(rows) <= set(ids)
    if proc.returncode == 0:
        assert killed, "no worker connection was found to kill before the run ended"
        assert report["retried"], report  # the killed connection's range, again
        assert rows == ids and report["inserted"] == len(ids), report
    again = env.idsync("run", "--no-log-ids", *_RANGES)
    assert again.returncode == 0, again.stderr[-1000:]
    assert env.target_ids() == ids


@BOTH_TARGETS
def test_the_source_link_cut_mid_range_then_back_ends_exact(env: Env) -> None:
    """Every worker's MongoDB connection is cut for a moment while ranges are read: the ranges
    are read again (a transient error, retried), and the run ends exact or fails clearly."""
    if (why := reachable()) is not None:
        pytest.fail(f"Toxiproxy not reachable ({why}); run `dev/services up toxiproxy`")
    ids = sorted(str(ObjectId()) for _ in range(40_000))
    load_ids(env.mongo_uri, [ObjectId(text) for text in ids])
    env.init_table()
    link = Proxy(env.mongo_uri.split("/")[2])
    try:
        args = ("run", "--json", *_RANGES, "--retries", "5", "--no-log-ids", "--batch-size", "200")
        with reaped(spawn_cli(link.url(env.mongo_uri), env.mysql_url, *args)) as proc:
            wait_for(lambda: proc.poll() is not None or len(env.target_ids()) > 2_000,
                     "the first batches")  # fmt: skip
            link.enable(False)
            time.sleep(1.5)
            link.enable(True)
            out, err = proc.communicate(timeout=300)
    finally:
        link.delete()
    assert "Traceback" not in err, err[-2000:]
    report = json.loads(out)
    rows = env.target_ids()
    assert len(rows) == len(set(rows)) and set(rows) <= set(ids)
    if proc.returncode == 0:
        assert rows == ids and report["inserted"] == len(ids), report
        return
    assert proc.returncode == 1 and report["status"] == "failed", report
    assert "MongoDB" in report["error"], report
    again = env.idsync("run", "--no-log-ids", *_RANGES)
    assert again.returncode == 0, again.stderr[-1000:]
    assert env.target_ids() == ids
