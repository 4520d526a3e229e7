"""The run itself stopped: SIGTERM/SIGINT finish cleanly, SIGKILL at any point loses nothing."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
from bson import ObjectId

from idsync.mysql.dialect import watch_lock_name
from idsync.postgres.dialect import lock_key
from tests.conftest import BOTH_TARGETS, Env
from tests.fault.conftest import (
    AS_FROM_A_TERMINAL,
    SLOW,
    cli_env,
    load_ids,
    reaped,
    spawn_cli,
    stderr_until,
    wait_for,
)
from tests.fault.toxiproxy import Proxy

pytestmark = pytest.mark.fault


def _no_duplicates_and_only_source(env: Env, source: set[str]) -> list[str]:
    rows = env.target_ids()
    assert len(rows) == len(set(rows)), "duplicate rows"
    assert set(rows) <= source, "rows that are not source ids"
    return rows


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@BOTH_TARGETS
def test_signal_stops_after_committed_batches(env: Env, signum: signal.Signals) -> None:
    ids = [ObjectId() for _ in range(3000)]
    load_ids(env.mongo_uri, ids, big=True)
    env.init_table()
    args = ("run", "--json", "--batch-size", "250", "--read-batch-size", "50", "--no-log-ids")
    proc = spawn_cli(env.mongo_uri, env.mysql_url, *args)
    wait_for(lambda: len(env.target_ids()) > 0 or proc.poll() is not None, "a first batch")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    report = json.loads(out)
    if report["status"] == "ok":  # the scan ended before the signal: nothing to interrupt
        pytest.skip("run finished before the signal arrived")
    assert proc.returncode == 1
    assert [line for line in err.splitlines() if "interrupted after" in line], err
    rows = _no_duplicates_and_only_source(env, {str(i) for i in ids})
    assert len(rows) == report["inserted"] and len(rows) % 250 == 0
    again = env.idsync("run", "--no-log-ids")
    assert again.returncode == 0
    assert env.target_ids() == sorted(str(i) for i in ids)


@BOTH_TARGETS
def test_sigkill_at_random_points_never_corrupts(env: Env) -> None:
    """Kill -9 the run at seeded random moments; after each, the table holds only whole,
    distinct source ids; a clean run then makes it exact."""
    rng = random.Random(20261129)
    ids = [str(ObjectId()) for _ in range(40_000)]
    load_ids(env.mongo_uri, [ObjectId(i) for i in ids])
    env.init_table()
    source = set(ids)
    for _ in range(50 if SLOW else 8):
        doomed = rng.sample(ids, rng.randrange(1, 20_000))
        marks = ", ".join(["%s"] * len(doomed))
        env.sql(f"DELETE FROM cm_cluster_id WHERE cluster_id IN ({marks})", doomed)
        proc = spawn_cli(env.mongo_uri, env.mysql_url, "run", "--batch-size", "1000")
        time.sleep(rng.uniform(0.0, 2.5))
        proc.kill()
        proc.communicate(timeout=60)
        _no_duplicates_and_only_source(env, source)
    done = env.idsync("run", "--json", "--no-log-ids")
    assert done.returncode == 0, done.stderr
    assert env.target_ids() == sorted(ids)


def _waiting_for_lock(env: Env, name: str) -> bool:
    if env.kind == "postgres":  # idsync tries pg_try_advisory_lock again and again
        rows = env.sql(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name LIKE 'idsync %%'"
            " AND datname = current_database() AND query LIKE 'SELECT pg_try_advisory_lock%%'"
        )
    else:
        rows = env.sql(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
            (f"%GET_LOCK('{name}'%",),
        )
    return bool(rows[0][0])


def _lock_names(env: Env) -> dict[str, str]:
    """The names of the run's and the watcher's locks on the test's target."""
    database, target = env.mysql_url.rsplit("/", 1)[1], "cm_cluster_id.cluster_id"
    if env.kind == "postgres":
        where = f"{database}.public.{target}"
        return {"run": f"idsync:{where}", "watch": f"idsync-watch:{where}:update-cluster-id"}
    return {
        "run": f"idsync:{database}.{target}",
        "watch": watch_lock_name(database, target, "update-cluster-id"),
    }


def _hold_lock(env: Env, name: str, held: bool) -> None:
    """Take (or give back) a lock as the test's own connection."""
    if env.kind == "postgres":
        verb = "lock" if held else "unlock"
        env.sql(f"SELECT pg_advisory_{verb}(%s)", (lock_key(name),))
    else:
        env.sql("SELECT GET_LOCK(%s, 0)" if held else "SELECT RELEASE_LOCK(%s)", (name,))


@pytest.mark.parametrize("env", ["mysql", "postgres"], indirect=True)
@pytest.mark.parametrize(
    ("command", "lock", "code", "status"),
    [("run", "run", 1, "failed"), ("watch", "watch", 0, "stopped"), ("watch", "run", 0, "stopped")],
)
def test_sigterm_while_waiting_for_the_lock_ends_at_once(
    env: Env, command: str, lock: str, code: int, status: str
) -> None:
    """A run (or watcher) waiting for a lock held by another connection stops on SIGTERM, as it
    does anywhere else, instead of waiting out --lock-timeout and calling itself refused. A
    watcher asked to stop (in its first full pass, waiting for the run lock) ends as asked: no
    error said, its pass recorded as stopped, not failed."""
    env.add_source([ObjectId() for _ in range(5)])
    assert env.idsync("init").returncode == 0
    name = _lock_names(env)[lock]
    _hold_lock(env, name, held=True)
    args = (command, "--json", "--lock-timeout", "120")
    try:
        with reaped(spawn_cli(env.mongo_uri, env.mysql_url, *args)) as proc:
            wait_for(lambda: _waiting_for_lock(env, name) or proc.poll() is not None, "the wait")
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGTERM)
            # The lock is waited for up to 120 s: ending well before that is ending on the signal.
            out, err = proc.communicate(timeout=45)
    finally:
        _hold_lock(env, name, held=False)
    assert proc.returncode == code, err
    assert json.loads(out)["status"] == status
    assert "[update-cluster-id] waiting up to 120 s for the lock" in err, err
    if command == "run":
        assert sum("error: interrupted" in line for line in err.splitlines()) == 1, err
    else:
        assert " ERROR " not in err, err
        recorded = env.sql("SELECT status FROM idsync_runs")
        assert all(row[0] == "stopped" for row in recorded), recorded
    assert env.target_ids() == []


def test_sigterm_during_the_check_after_a_run_is_a_failed_check(env: Env) -> None:
    """The run has finished, its check reads the source over a slow link: SIGTERM there ends the
    command with the run's report, the check failed as interrupted, said once, exit 1."""
    ids = [ObjectId() for _ in range(2000)]
    env.add_source(ids)
    assert env.idsync("init").returncode == 0
    args = ("run", "--json", "--no-log-ids", "--check-after", "--exact", "--read-batch-size", "100")
    with contextlib.ExitStack() as cleanup:
        link = Proxy(urlsplit(env.mongo_uri).netloc)
        cleanup.callback(link.delete)
        link.add("latency", "downstream", latency=250)
        proc = cleanup.enter_context(reaped(spawn_cli(link.url(env.mongo_uri), env.mysql_url,
                                                      *args)))  # fmt: skip
        # The log is buffered: the run's last line shows once the check has begun.
        before = stderr_until(proc, "job end")
        time.sleep(1.0)  # into the check's reads, which take 5 s over this link
        assert proc.poll() is None, before
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    report = json.loads(out)
    assert proc.returncode == 1, err
    assert (report["status"], report["inserted"]) == ("ok", 2000), report
    assert report["check"]["status"] == "failed" and "interrupted" in report["check"]["error"]
    assert report["check"]["proof"] == "" and report["exit_code"] == 1  # as the process says
    assert sum(" ERROR " in line for line in err.splitlines()) == 1, err
    assert "SIGTERM received" in err
    assert env.target_ids() == sorted(str(i) for i in ids)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_status_waits_is_a_failure_said_once(
    env: Env, signum: signal.Signals
) -> None:
    """`status` (like `init` and `doctor`) stopped by a signal: one JSON object, one line on
    stderr, exit 1; never a bare "Aborted!" or nothing at all."""
    assert env.idsync("init").returncode == 0
    env.sql("LOCK TABLES idsync_runs WRITE")  # status's read of the history waits for it
    proc = subprocess.Popen(
        [sys.executable, "-c", AS_FROM_A_TERMINAL, "status", "--json"],
        env=cli_env(env.mongo_uri, env.mysql_url), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        waiting = (
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE %s"
            " AND INFO LIKE %s AND DB = DATABASE()"
        )
        wait_for(lambda: env.sql(waiting, ("%metadata lock%", "%idsync_runs%"))[0][0] > 0,
                 "status's read")  # fmt: skip
        proc.send_signal(signum)
        time.sleep(0.5)
    finally:
        env.sql("UNLOCK TABLES")  # a read blocked in the server sees the signal when it returns
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    report = json.loads(out)
    assert report["status"] == "failed" and signum.name in report["error"], report
    lines = err.splitlines()  # not even click's bare newline
    assert len(lines) == 1 and signum.name in lines[0] and "Aborted" not in err, err
    assert "[update-cluster-id] error: interrupted" in lines[0]


def test_sigterm_while_waiting_to_retry_is_an_interruption(env: Env) -> None:
    """A transient failure, then SIGTERM in the pause before the next attempt: the run ends at
    once, reported (and recorded) as interrupted, not as the failure it was going to retry."""
    env.add_source([ObjectId() for _ in range(50)])
    assert env.idsync("init").returncode == 0
    with contextlib.ExitStack() as cleanup:
        link = Proxy(urlsplit(env.mongo_uri).netloc)
        cleanup.callback(link.delete)
        link.add("reset_peer", "downstream", timeout=0)
        args = ("run", "--json", "--retries", "3", "--connect-timeout", "2")
        proc = cleanup.enter_context(reaped(spawn_cli(link.url(env.mongo_uri), env.mysql_url,
                                                      *args)))  # fmt: skip
        seen = stderr_until(proc, "retrying in")
        assert proc.poll() is None, seen
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    report = json.loads(out)
    assert proc.returncode == 1 and "interrupted" in report["error"], (report, err)
    [(status, error)] = env.sql("SELECT status, error FROM idsync_runs")
    assert status == "failed" and "interrupted" in error


def test_a_watcher_stopped_in_its_full_pass_counts_what_it_committed(env: Env) -> None:
    load_ids(env.mongo_uri, [ObjectId() for _ in range(3000)], big=True)
    assert env.idsync("init").returncode == 0
    args = ("watch", "--json", "--batch-size", "250", "--read-batch-size", "50", "--no-log-ids")
    with reaped(spawn_cli(env.mongo_uri, env.mysql_url, *args)) as proc:
        wait_for(lambda: len(env.target_ids()) > 0 or proc.poll() is not None, "a first batch")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary, stored = json.loads(out), len(env.target_ids())
    if stored == 3000:
        pytest.skip("the pass ended before the signal")
    assert (summary["inserted"], summary["batches"]) == (stored, stored // 250), summary
    [(status, inserted)] = env.sql("SELECT status, inserted FROM idsync_runs")
    assert (status, inserted) == ("stopped", stored)


def test_a_signal_while_the_report_is_printed_appends_nothing(env: Env) -> None:
    """`status --json` printing into a pipe no one reads yet: SIGTERM ends it at once; what
    reached the pipe is part of the one report, never followed by a second object."""
    assert env.idsync("init").returncode == 0
    started = "2026-01-01 00:00:00"
    rows = [(f"r{n:05d}", "update-cluster-id", "run", started, started, "ok", 0, 0, 0.5, "h", "v")
            for n in range(3000)]  # fmt: skip
    env.mysql.cursor().executemany(
        "INSERT INTO idsync_runs (run_id, job, command, started_at, finished_at, status,"
        " exit_code, dry_run, duration_s, host, version)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        rows,
    )
    env.mysql.commit()
    args = ("status", "--json", "--limit", "3000")
    with reaped(spawn_cli(env.mongo_uri, env.mysql_url, *args)) as proc:
        time.sleep(3.0)  # its report fills the pipe, and it waits for a reader
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert out.count('"status": "failed"') == 0 and out.startswith('{"runs"'), out[-300:]
