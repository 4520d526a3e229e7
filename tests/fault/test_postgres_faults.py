"""Faults made to happen for real on the PostgreSQL target alone: the run's backend terminated
by the server (``pg_terminate_backend``, the analogue of KILL). Races, kill -9 of idsync or of
the server, and locks run on both targets in the other fault modules."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from bson import ObjectId

from idsync.urls import PostgresURL
from tests.conftest import Env
from tests.conftest import pg_sql as sql
from tests.fault.conftest import load_ids, spawn_cli, wait_for

pytestmark = pytest.mark.fault
RACE = ("--lock-timeout", "120", "--batch-size", "700")


def _url(db: PostgresURL) -> str:
    return f"postgresql://{db.user}:{db.password}@{db.host}:{db.port}/{db.database}"


def _stored(db: PostgresURL) -> list[str]:
    return sorted(str(v) for (v,) in sql(db, "SELECT cluster_id FROM cm_cluster_id"))


@pytest.fixture
def admin(database: PostgresURL) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    conninfo = f"host={database.host} port={database.port} user={database.user}"
    with psycopg.connect(conninfo, password=database.password, dbname=database.database,
                         autocommit=True) as conn:  # fmt: skip
        yield conn


def test_a_terminated_backend_is_retried_and_nothing_is_lost(
    env: Env, database: PostgresURL, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    ids = sorted(str(ObjectId()) for _ in range(60_000))
    load_ids(env.mongo_uri, [ObjectId(i) for i in ids])
    sql(database, 'CREATE TABLE cm_cluster_id (cluster_id text COLLATE "C" NOT NULL UNIQUE)')
    proc = spawn_cli(env.mongo_uri, _url(database), "run", "--json", "--no-log-ids",
                     "--batch-size", "200", "--retries", "3")  # fmt: skip

    def rows() -> int:
        [(count,)] = admin.execute("SELECT count(*) FROM cm_cluster_id").fetchall()
        return int(str(count))

    try:
        wait_for(lambda: rows() > 2000 or proc.poll() is not None, "the first batches")
        terminated = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'idsync %%' AND datname = current_database()"
        ).fetchall()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    report = json.loads(out)
    assert proc.returncode == 0, err
    assert any(flag for (flag,) in terminated), "no backend of the run was found to terminate"
    assert report["retried"], "a terminated backend was not retried"
    assert _stored(database) == ids


def test_the_socket_timeout_is_one_statement_s_not_a_batch_s(
    env: Env, database: PostgresURL
) -> None:
    """A batch the careful way (a refused value isolated by halves, each statement slow but
    under the timeout) takes longer than --socket-timeout in all: it ends partial, not failed."""
    ids = sorted(str(ObjectId()) for _ in range(64))
    load_ids(env.mongo_uri, [ObjectId(i) for i in ids])
    sql(database, 'CREATE TABLE cm_cluster_id (cluster_id text COLLATE "C" NOT NULL UNIQUE)')
    sql(
        database,
        "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.cluster_id = '{ids[17]}' THEN RAISE EXCEPTION 'no' USING ERRCODE = '22023';"
        " END IF; RETURN NEW; END $$",
    )
    sql(database, "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS"
                  " $$ BEGIN PERFORM pg_sleep(0.6); RETURN NULL; END $$")  # fmt: skip
    sql(database, "CREATE TRIGGER refuse BEFORE INSERT ON cm_cluster_id FOR EACH ROW"
                  " EXECUTE FUNCTION refuse_one()")  # fmt: skip
    sql(database, "CREATE TRIGGER slow AFTER INSERT ON cm_cluster_id FOR EACH STATEMENT"
                  " EXECUTE FUNCTION slow()")  # fmt: skip
    proc = spawn_cli(env.mongo_uri, _url(database), "run", "--json", "--no-log-ids",
                     "--socket-timeout", "1", "--retries", "0")  # fmt: skip
    out, err = proc.communicate(timeout=120)
    report = json.loads(out)
    assert (proc.returncode, report["status"]) == (4, "partial"), err[-2000:]
    assert (report["inserted"], report["rejected"]) == (63, 1)
    assert len(_stored(database)) == 63
