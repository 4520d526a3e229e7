"""Runs racing each other, and other writers racing a run: no duplicates, no errors, no loss."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient

from tests.conftest import MYSQL_URL, Env, mysql_connect
from tests.fault.conftest import load_ids, spawn_cli

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
            assert "another run holds the lock" in err.splitlines()[-1]
    finish = env.idsync("run", "--no-log-ids")
    assert finish.returncode == 0
    assert env.target_ids() == sorted(str(i) for i in ids)


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


def test_rows_written_by_someone_else_during_a_run(env: Env) -> None:
    ids = [str(ObjectId()) for _ in range(60_000)]
    load_ids(env.mongo_uri, [ObjectId(i) for i in ids])
    env.init_table()
    database = env.mysql_url.rsplit("/", 1)[1]
    stop = threading.Event()

    def other_writer() -> None:
        conn = mysql_connect(MYSQL_URL, database=database)
        cur = conn.cursor()
        for start in range(0, len(ids), 500):
            if stop.is_set():
                break
            chunk = [(i,) for i in ids[start : start + 500]]
            cur.executemany("INSERT IGNORE INTO cm_cluster_id (cluster_id) VALUES (%s)", chunk)
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
