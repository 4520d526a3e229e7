"""Servers that are down, die mid-run, drop the connection or hang: loud, bounded, no loss."""

from __future__ import annotations

import json
import threading

import pytest
from bson import ObjectId

from tests.fault.conftest import load_ids, run_cli, said_once, spawn_cli, wait_for
from tests.fault.servers import PrivateFerretDB, PrivateMariaDB, PrivatePostgres

pytestmark = pytest.mark.fault


def stored(db: PrivateMariaDB) -> list[str]:
    return db.ids()


def init(ferret: PrivateFerretDB, db: PrivateMariaDB) -> None:
    assert run_cli(ferret.uri, db.url(), "init").returncode == 0


def test_mongodb_stopped_at_start(ferretdb: PrivateFerretDB, mariadb: PrivateMariaDB) -> None:
    init(ferretdb, mariadb)
    ferretdb.stop()
    done = run_cli(ferretdb.uri, mariadb.url(), "run", "--json", "--connect-timeout", "2")
    assert done.returncode == 1
    assert said_once(f"MongoDB unreachable at 127.0.0.1:{ferretdb.port}", done.stderr), done.stderr
    assert json.loads(done.stdout)["status"] == "failed"
    assert stored(mariadb) == []


def test_mongodb_killed_mid_scan(ferretdb: PrivateFerretDB, mariadb: PrivateMariaDB) -> None:
    ids = [ObjectId() for _ in range(6000)]
    load_ids(ferretdb.uri, ids, big=True)
    init(ferretdb, mariadb)
    args = ("run", "--json", "--retries", "0", "--batch-size", "500", "--read-batch-size", "100")
    proc = spawn_cli(ferretdb.uri, mariadb.url(), *args)
    wait_for(lambda: len(stored(mariadb)) > 0 or proc.poll() is not None, "a first batch")
    ferretdb.kill9()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert said_once(f"MongoDB unreachable at 127.0.0.1:{ferretdb.port}", err), err
    report = json.loads(out)
    rows = stored(mariadb)
    assert len(rows) == report["inserted"] and len(rows) % 500 == 0  # committed batches only
    assert set(rows) <= {str(i) for i in ids} and len(set(rows)) == len(rows)
    ferretdb.start()
    assert run_cli(ferretdb.uri, mariadb.url(), "run", "--no-log-ids").returncode == 0
    assert stored(mariadb) == sorted(str(i) for i in ids)


Target = PrivateMariaDB | PrivatePostgres


def test_target_unreachable_at_start(ferretdb: PrivateFerretDB, sql_server: Target) -> None:
    load_ids(ferretdb.uri, [ObjectId()])
    sql_server.stop()
    url = sql_server.url()
    done = run_cli(ferretdb.uri, url, "run", "--connect-timeout", "2", "--retries", "0")
    assert done.returncode == 1
    unreachable = f"{sql_server.label} unreachable at 127.0.0.1:{sql_server.port}"
    assert said_once(unreachable, done.stderr), done.stderr


def test_target_killed_mid_insert(ferretdb: PrivateFerretDB, sql_server: Target) -> None:
    """kill -9 of the server while batches commit: whole batches survive its crash recovery,
    none twice; the next run makes the table exact."""
    ids = [ObjectId() for _ in range(150_000)]
    load_ids(ferretdb.uri, ids)
    assert run_cli(ferretdb.uri, sql_server.url(), "init").returncode == 0
    args = ("run", "--retries", "0", "--batch-size", "2000")
    proc = spawn_cli(ferretdb.uri, sql_server.url(), *args)
    wait_for(lambda: len(sql_server.ids()) > 0 or proc.poll() is not None, "a first batch")
    sql_server.kill9()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    unreachable = f"{sql_server.label} unreachable at 127.0.0.1:{sql_server.port}"
    assert said_once(unreachable, err), err
    sql_server.start()
    rows = sql_server.ids()
    assert len(rows) % 2000 == 0 and len(set(rows)) == len(rows)  # whole batches survived
    assert run_cli(ferretdb.uri, sql_server.url(), "run", "--no-log-ids").returncode == 0
    assert sql_server.ids() == sorted(str(i) for i in ids)


def test_killed_connection_is_retried(ferretdb: PrivateFerretDB, mariadb: PrivateMariaDB) -> None:
    ids = [ObjectId() for _ in range(4000)]
    load_ids(ferretdb.uri, ids, big=True)
    init(ferretdb, mariadb)
    args = ("run", "--json", "--batch-size", "500", "--read-batch-size", "100", "--no-log-ids")
    proc = spawn_cli(ferretdb.uri, mariadb.url(), *args)
    wait_for(lambda: len(stored(mariadb)) > 0 or proc.poll() is not None, "a first batch")
    ours = mariadb.root_sql(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'idsync' AND DB = 'maas'"
    )
    for (conn_id,) in ours:
        mariadb.root_sql(f"KILL CONNECTION {int(conn_id)}")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["attempts"] == 2 and "MySQL unreachable" in report["retried"][0]
    assert "retrying" in err
    assert stored(mariadb) == sorted(str(i) for i in ids)


def test_slow_mysql_times_out_retries_then_fails(
    ferretdb: PrivateFerretDB, mariadb: PrivateMariaDB
) -> None:
    load_ids(ferretdb.uri, [ObjectId()])
    init(ferretdb, mariadb)
    blocker = mariadb.root_connect()
    blocker.cursor().execute("LOCK TABLES maas.cm_cluster_id WRITE")
    try:
        done = run_cli(
            ferretdb.uri, mariadb.url(), "run", "--json", "--socket-timeout", "1",
            "--retries", "1", timeout=120,
        )  # fmt: skip
    finally:
        blocker.close()
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["attempts"] == 2 and len(report["retried"]) == 1
    assert "MySQL unreachable" in report["error"]


def test_frozen_mongodb_times_out(ferretdb: PrivateFerretDB, mariadb: PrivateMariaDB) -> None:
    load_ids(ferretdb.uri, [ObjectId() for _ in range(3000)], big=True)
    init(ferretdb, mariadb)
    args = ("run", "--socket-timeout", "2", "--retries", "0", "--read-batch-size", "100")
    proc = spawn_cli(ferretdb.uri, mariadb.url(), *args)
    timer = threading.Timer(1.0, ferretdb.freeze)
    timer.start()
    try:
        _out, err = proc.communicate(timeout=120)
    finally:
        timer.join()
        ferretdb.thaw()
    assert proc.returncode in (0, 1)
    if proc.returncode == 1:  # frozen before the scan ended: the timeout, not a hang
        assert said_once("MongoDB unreachable", err), err


def test_missing_privilege_is_terminal(ferretdb: PrivateFerretDB, mariadb: PrivateMariaDB) -> None:
    load_ids(ferretdb.uri, [ObjectId()])
    init(ferretdb, mariadb)
    mariadb.root_sql(
        "CREATE USER 'reader'@'localhost' IDENTIFIED BY 'r'",
        "CREATE USER 'reader'@'127.0.0.1' IDENTIFIED BY 'r'",
        "GRANT SELECT ON maas.* TO 'reader'@'localhost'",
        "GRANT SELECT ON maas.* TO 'reader'@'127.0.0.1'",
        "CREATE USER 'nobody'@'localhost' IDENTIFIED BY 'n'",
        "CREATE USER 'nobody'@'127.0.0.1' IDENTIFIED BY 'n'",
        "GRANT USAGE ON *.* TO 'nobody'@'127.0.0.1'",
    )
    done = run_cli(ferretdb.uri, mariadb.url("r", "reader"), "run", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["attempts"] == 1 and "grant the privilege" in report["error"]
    denied = run_cli(ferretdb.uri, mariadb.url("n", "nobody"), "run", "--json")
    assert denied.returncode == 1
    assert "denied" in json.loads(denied.stdout)["error"]
    assert stored(mariadb) == []
