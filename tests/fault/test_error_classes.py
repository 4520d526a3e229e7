"""What kind of failure each server error is: retried only when a later try can work."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from bson import ObjectId

from idsync.mysql.dialect import watch_lock_name
from idsync.mysql.state import target_key
from tests.conftest import BOTH_TARGETS, MYSQL_URL, Env, mysql_connect
from tests.fault.conftest import spawn_cli, wait_for
from tests.watch_support import Daemon, wait_until

pytestmark = pytest.mark.fault


@BOTH_TARGETS
def test_a_check_constraint_fails_once_and_is_not_retried(env: Env) -> None:
    # MariaDB answers 4025 (MySQL 3819), PostgreSQL 23514: a server error no retry can fix.
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) NOT NULL UNIQUE,"
        " CONSTRAINT no_bad CHECK (cluster_id NOT LIKE 'bad%%'))"
    )
    env.add_source([ObjectId(), "bad-1"])
    done = env.idsync("run", "--json", "--retries", "2")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "failed" and report["attempts"] == 1 and report["retried"] == []
    code = {"mysql": "4025", "postgres": "23514"}[env.kind]
    assert code in report["error"] and "unreachable" not in report["error"]
    assert "retrying" not in done.stderr


def test_a_failed_srv_lookup_is_retried(env: Env) -> None:
    # A name under .invalid never resolves, without asking the network: DNS may answer later.
    done = env.idsync(
        "run", "--json", "--retries", "1",
        env={"IDSYNC_MONGO_URI": "mongodb+srv://cluster0.example.invalid/maas"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "failed" and report["attempts"] == 2
    assert len(report["retried"]) == 1 and "cluster0.example.invalid" in report["retried"][0]
    assert "retrying" in done.stderr


def test_a_malformed_srv_uri_is_still_a_config_error(env: Env) -> None:
    done = env.idsync("run", env={"IDSYNC_MONGO_URI": "mongodb+srv://a.example.invalid:27017/x"})
    assert done.returncode == 2, done.stderr
    assert "port" in done.stderr


def test_a_lock_wait_killed_by_the_server_is_an_error_not_a_held_lock(env: Env) -> None:
    env.add_source([ObjectId()])
    env.init_table()
    holder = mysql_connect(MYSQL_URL)
    database = env.mysql_url.rsplit("/", 1)[-1]
    try:
        holder.cursor().execute(
            "SELECT GET_LOCK(%s, 0)", (f"idsync:{database}.cm_cluster_id.cluster_id",)
        )
        proc = spawn_cli(env.mongo_uri, env.mysql_url, "run", "--json", "--lock-timeout", "60")
        # GET_LOCK answers NULL when its wait is killed: an error, not "another run holds it".
        killer = mysql_connect(MYSQL_URL)
        waiting: list[int] = []

        def find_waiter() -> bool:
            cur = killer.cursor()
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
                (f"SELECT GET_LOCK('idsync:{database}.%",),
            )
            waiting.extend(row[0] for row in cur.fetchall())
            return bool(waiting)

        wait_for(find_waiter, "the run to wait for the lock", timeout=60)
        killer.cursor().execute(f"KILL QUERY {int(waiting[0])}")
        killer.close()
        # The lock is waited for up to 60 s: ending well before that is ending on the NULL.
        out, err = proc.communicate(timeout=30)
    finally:
        holder.close()
    assert proc.returncode == 1, err
    report = json.loads(out)
    assert report["status"] == "failed" and "GET_LOCK" in report["error"]
    assert "another run holds the lock" not in err
    assert env.target_ids() == []


def test_a_watcher_lock_wait_killed_by_the_server_is_not_another_watcher(
    env: Env, tmp_path: Path
) -> None:
    env.init_table()
    database = env.mysql_url.rsplit("/", 1)[-1]
    lock = watch_lock_name(database, target_key("cm_cluster_id", "cluster_id"), "update-cluster-id")
    holder = mysql_connect(MYSQL_URL)
    holder.cursor().execute("SELECT GET_LOCK(%s, 0)", (lock,))
    args = ["--mode", "poll", "--skip-initial-pass", "--lock-timeout", "60", "--backoff-max", "1"]
    daemon = Daemon(tmp_path, env.mongo_uri, env.mysql_url, args).start()
    try:
        killer = mysql_connect(MYSQL_URL)
        waiting: list[int] = []

        def find_waiter() -> bool:
            cur = killer.cursor()
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s", (f"%{lock}%",)
            )
            mine = (holder.thread_id(), killer.thread_id())
            waiting.extend(row[0] for row in cur.fetchall() if row[0] not in mine)
            return bool(waiting)

        wait_until(find_waiter, "the watcher to wait for its lock")
        killer.cursor().execute(f"KILL QUERY {int(waiting[0])}")
        wait_until(lambda: "answered NULL to GET_LOCK" in daemon.stderr, "the error to be logged")
        assert "another watcher" not in daemon.stderr
        holder.cursor().execute("SELECT RELEASE_LOCK(%s)", (lock,))
        wait_until(lambda: bool(env.sql("SELECT 1 FROM idsync_state")), "the lock to be taken")
        daemon.send(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.stderr
    finally:
        daemon.kill()
        holder.close()


def test_a_killed_query_is_retried_and_the_run_ends_exact(env: Env) -> None:
    """KILL QUERY on the run's read of the column (1317) is retried like KILL CONNECTION."""
    ids = [ObjectId() for _ in range(50)]
    env.add_source(ids)
    env.init_table()
    locker = mysql_connect(MYSQL_URL, database=env.mysql_url.rsplit("/", 1)[-1])
    locker.cursor().execute("LOCK TABLES cm_cluster_id WRITE")  # the run's read waits for it
    proc = spawn_cli(env.mongo_uri, env.mysql_url, "run", "--json", "--retries", "2")
    try:
        killer = mysql_connect(MYSQL_URL)
        waiting: list[int] = []

        def find_reader() -> bool:
            cur = killer.cursor()
            cur.execute(  # this test's database only: other runs read such columns too
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND DB = %s",
                ("SELECT `cluster_id` FROM%", env.mysql_url.rsplit("/", 1)[-1]),
            )
            waiting.extend(row[0] for row in cur.fetchall())
            return bool(waiting)

        wait_for(find_reader, "the run to read the column", timeout=60)
        killer.cursor().execute(f"KILL QUERY {int(waiting[0])}")
        killer.close()
    finally:
        locker.cursor().execute("UNLOCK TABLES")
        locker.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["attempts"] == 2 and "1317" in report["retried"][0]
    assert env.target_ids() == sorted(str(i) for i in ids)
