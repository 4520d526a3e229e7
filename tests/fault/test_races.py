"""Runs racing each other, and other writers racing a run: no duplicates, no errors, no loss."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from bson import ObjectId
from pymongo import MongoClient

from idsync import Job
from idsync.mysql.target import MySQLTarget
from tests.conftest import BOTH_TARGETS, MYSQL_URL, Env, mysql_connect
from tests.fault.conftest import load_ids, run_cli, spawn_cli

pytestmark = pytest.mark.fault


def _race(env: Env, runs: int, *args: str) -> list[tuple[int, dict[str, Any], str]]:
    procs = [
        spawn_cli(env.mongo_uri, env.mysql_url, "run", "--json", "--no-log-ids", *args)
        for _ in range(runs)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append((proc.returncode, json.loads(out), err))
    return results


@pytest.mark.parametrize("unique", [True, False], ids=["unique-index", "no-unique-index"])
@BOTH_TARGETS
def test_four_runs_at_once_wait_for_each_other(env: Env, unique: bool) -> None:
    ids = sorted(str(ObjectId()) for _ in range(20_000))
    load_ids(env.mongo_uri, [ObjectId(i) for i in ids])
    if unique:
        env.init_table()
    else:
        env.sql("CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) NOT NULL)")
    for round_ in range(3):
        env.sql("DELETE FROM cm_cluster_id WHERE RIGHT(cluster_id, 1) IN ('0', '7', 'a')")
        missing = len(ids) - len(env.target_ids())
        results = _race(env, 4, "--lock-timeout", "120", "--batch-size", "700")
        assert [code for code, _report, _err in results] == [0, 0, 0, 0], results[0][2]
        assert env.target_ids() == ids, f"round {round_}"
        inserted = sum(report["inserted"] for _code, report, _err in results)
        assert inserted == missing


@BOTH_TARGETS
def test_a_busy_target_refuses_after_the_lock_timeout(env: Env) -> None:
    ids = [ObjectId() for _ in range(60_000)]
    load_ids(env.mongo_uri, ids)
    env.init_table()
    results = _race(env, 4, "--lock-timeout", "0", "--batch-size", "500")
    codes = sorted(code for code, _report, _err in results)
    assert codes.count(0) >= 1 and set(codes) <= {0, 3}, codes
    for code, report, err in results:
        if code == 3:
            assert report["status"] == "refused"
            assert "another run holds the lock" in err
    finish = env.idsync("run", "--no-log-ids")
    assert finish.returncode == 0
    assert env.target_ids() == sorted(str(i) for i in ids)


@BOTH_TARGETS
def test_documents_added_during_a_scan_land_now_or_next_run(env: Env) -> None:
    first = [ObjectId() for _ in range(3000)]
    load_ids(env.mongo_uri, first, big=True)
    env.init_table()
    later: list[ObjectId] = []
    done = threading.Event()

    def add_documents() -> None:
        client: MongoClient[dict[str, Any]] = MongoClient(env.mongo_uri)
        with client:
            coll = client.get_default_database().cluster_trips
            while not done.is_set() and len(later) < 500:
                new = ObjectId()
                coll.insert_one({"_id": new})
                later.append(new)
                time.sleep(0.005)

    writer = threading.Thread(target=add_documents)
    writer.start()
    try:
        during = env.idsync("run", "--no-log-ids", "--read-batch-size", "100")
    finally:
        done.set()
        writer.join()
    assert during.returncode == 0, during.stderr
    assert env.idsync("run", "--no-log-ids").returncode == 0
    assert env.target_ids() == sorted(str(i) for i in first + later)


@BOTH_TARGETS
def test_rows_written_by_someone_else_during_a_run(env: Env) -> None:
    ids = [str(ObjectId()) for _ in range(60_000)]
    load_ids(env.mongo_uri, [ObjectId(i) for i in ids])
    env.init_table()
    database = env.mysql_url.rsplit("/", 1)[1]
    stop = threading.Event()

    def other_writer() -> None:
        if env.kind == "postgres":
            conn: Any = psycopg.connect(env.mysql_url, autocommit=True)
            insert = "INSERT INTO cm_cluster_id (cluster_id) VALUES (%s) ON CONFLICT DO NOTHING"
        else:
            conn = mysql_connect(MYSQL_URL, database=database)
            insert = "INSERT IGNORE INTO cm_cluster_id (cluster_id) VALUES (%s)"
        cur = conn.cursor()
        for start in range(0, len(ids), 500):
            if stop.is_set():
                break
            cur.executemany(insert, [(i,) for i in ids[start : start + 500]])
        conn.close()

    writer = threading.Thread(target=other_writer)
    writer.start()
    try:
        done = env.idsync("run", "--json", "--no-log-ids", "--batch-size", "500")
    finally:
        stop.set()
        writer.join()
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rejected"] == 0
    assert env.target_ids() == sorted(ids)


def _upper_job(tmp_path: Path) -> str:
    """A config naming the same column in capitals: MySQL's column names ignore case."""
    config = tmp_path / "idsync.toml"
    config.write_text(
        '[jobs.upper]\ncollection = "cluster_trips"\nfield = "_id"\n'
        'table = "cm_cluster_id"\ncolumn = "CLUSTER_ID"\n'
    )
    return str(config)


def test_two_spellings_of_a_column_take_one_lock(env: Env, tmp_path: Path) -> None:
    """The lock is the column's, not the spelling's: `CLUSTER_ID` waits for `cluster_id`."""
    env.add_source([ObjectId() for _ in range(100)])
    env.sql("CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) NOT NULL)")
    with MySQLTarget(env.settings(), Job()) as holder:
        holder.connect()
        holder.inspect()
        holder.lock(1)  # a real run's lock, held by another connection
        refused = run_cli(
            env.mongo_uri, env.mysql_url, "run", "--json", "--config", _upper_job(tmp_path),
            "--job", "upper", "--lock-timeout", "1",
        )  # fmt: skip
    assert refused.returncode == 3, refused.stderr
    assert json.loads(refused.stdout)["status"] == "refused"
    assert env.target_ids() == []


def test_two_spellings_run_at_once_never_duplicate(env: Env, tmp_path: Path) -> None:
    ids = sorted(str(ObjectId()) for _ in range(30_000))
    load_ids(env.mongo_uri, [ObjectId(i) for i in ids])
    env.sql("CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) NOT NULL)")  # no UNIQUE index
    config = _upper_job(tmp_path)
    run = ("run", "--json", "--no-log-ids", "--lock-timeout", "120")
    procs = [
        spawn_cli(env.mongo_uri, env.mysql_url, *run),
        spawn_cli(env.mongo_uri, env.mysql_url, *run, "--config", config, "--job", "upper"),
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs[0][1][-2000:]
    assert env.target_ids() == ids  # each id once
    inserted = [json.loads(out)["inserted"] for out, _err in outputs]
    assert sorted(inserted) == [0, 30_000]
