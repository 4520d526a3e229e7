"""`doctor` says ok only when the commands will not fail for a reason it could have seen.

Privileges are tried on the server itself, with a real user of partial grants: what the
server refuses to `doctor` is what it would refuse to `run` and `watch`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from bson import ObjectId

from tests.conftest import MYSQL_URL, Env, mysql_connect

GrantFn = Callable[..., str]


@pytest.fixture
def user(env: Env) -> Iterator[GrantFn]:
    """A MySQL user of the test's own with only the given grants; returns its URL."""
    name = f"dr_{uuid.uuid4().hex[:10]}"
    admin = mysql_connect(MYSQL_URL)
    database = env.mysql_url.rsplit("/", 1)[-1]
    admin.cursor().execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw'")

    def grant(*grants: str) -> str:
        for privileges in grants:
            what, _, on = privileges.partition(" ON ")
            admin.cursor().execute(f"GRANT {what} ON `{database}`.{on} TO '{name}'@'%'")
        parts = urlsplit(env.mysql_url)
        netloc = f"{name}:pw@{parts.hostname}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    try:
        yield grant
    finally:
        admin.cursor().execute(f"DROP USER IF EXISTS '{name}'@'%'")
        admin.close()


def _doctor(env: Env, url: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = env.idsync("doctor", "--json", env={"IDSYNC_MYSQL_URL": url})
    found = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    return done.returncode, found


@pytest.fixture
def ready(env: Env) -> Env:
    env.add_source([ObjectId() for _ in range(3)])
    assert env.idsync("init").returncode == 0  # the table, idsync_runs and idsync_state
    return env


_TARGET = "SELECT, INSERT, UPDATE ON cm_cluster_id"
_STATE = "SELECT, INSERT, UPDATE, CREATE ON idsync_state"
_RUNS = "SELECT, INSERT ON idsync_runs"


def test_without_update_doctor_fails_where_run_fails(ready: Env, user: GrantFn) -> None:
    url = user("SELECT, INSERT ON cm_cluster_id", _STATE, _RUNS)
    code, found = _doctor(ready, url)
    assert code == 1
    assert found["privileges"]["level"] == "fail"
    assert "UPDATE command denied" in found["privileges"]["detail"]
    assert "GRANT SELECT, INSERT, UPDATE" in found["privileges"]["fix"]
    run = ready.idsync("run", "--json", env={"IDSYNC_MYSQL_URL": url})
    assert run.returncode == 1 and "UPDATE command denied" in json.loads(run.stdout)["error"]


def test_every_grant_the_commands_need_is_ok(ready: Env, user: GrantFn) -> None:
    url = user(_TARGET, _STATE, _RUNS)
    code, found = _doctor(ready, url)
    assert {c: found[c]["level"] for c in ("privileges", "state", "history")} == {
        "privileges": "ok",
        "state": "ok",
        "history": "ok",
    }
    assert code == (0 if found["change-streams"]["level"] == "ok" else 4), found
    assert ready.idsync("run", env={"IDSYNC_MYSQL_URL": url}).returncode == 0


def test_state_privileges_the_watcher_needs(ready: Env, user: GrantFn) -> None:
    url = user(_TARGET, "SELECT ON idsync_state", _RUNS)
    code, found = _doctor(ready, url)
    assert code == 1 and found["state"]["level"] == "fail"
    detail = found["state"]["detail"]
    assert "CREATE command denied" in detail
    assert "INSERT, UPDATE command denied" in detail or "INSERT command denied" in detail
    assert "idsync watch" in detail


def test_state_table_to_be_created_needs_create(ready: Env, user: GrantFn) -> None:
    ready.sql("DROP TABLE idsync_state")
    url = user(_TARGET, _RUNS)
    code, found = _doctor(ready, url)
    assert code == 1 and "CREATE command denied" in found["state"]["detail"]
    # With the database's grants it will be created and used: ok.
    url = user("SELECT, INSERT, UPDATE, CREATE ON *")
    code, found = _doctor(ready, url)
    assert found["state"]["level"] == "ok", found["state"]


def test_history_that_cannot_be_written_is_not_ok(ready: Env, user: GrantFn) -> None:
    url = user(_TARGET, _STATE, "SELECT ON idsync_runs")
    _code, found = _doctor(ready, url)
    assert found["history"]["level"] == "warn"
    assert "INSERT command denied" in found["history"]["detail"]
    run = ready.idsync("run", env={"IDSYNC_MYSQL_URL": url})
    assert run.returncode == 0 and "run history not written" in run.stderr


def test_a_server_without_hello_is_measured_or_skipped_not_failed(watch_env: Env) -> None:
    # mongo-java-server speaks the MongoDB 4.4 wire protocol: no `hello` command.
    watch_env.add_source([ObjectId()])
    watch_env.idsync("init")
    done = watch_env.idsync("doctor", "--json")
    found = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    assert done.returncode != 1, found
    assert found["clock-skew"]["level"] in ("ok", "warn"), found["clock-skew"]


def test_a_mongodb_uri_that_does_not_resolve_is_a_finding(ready: Env) -> None:
    uri = "mongodb+srv://cluster0.example.invalid/maas"
    done = ready.idsync("doctor", "--json", env={"IDSYNC_MONGO_URI": uri})
    assert done.returncode == 1, done.stderr
    found = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    assert found["mongodb"]["level"] == "fail" and "DNS" in found["mongodb"]["detail"]
    assert found["privileges"]["level"] == "ok"  # MySQL is still examined


def test_a_table_the_insert_cannot_fill_fails_doctor_as_it_fails_run(env: Env) -> None:
    # Another NOT NULL column without a default: strict mode refuses every insert of the id.
    env.add_source([ObjectId()])
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) NOT NULL UNIQUE, owner INT NOT NULL)"
    )
    done = env.idsync("doctor", "--json")
    found = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    assert done.returncode == 1 and found["privileges"]["level"] == "fail"
    assert "owner" in found["privileges"]["detail"]
    run = env.idsync("run", "--json")
    assert run.returncode == 1 and "owner" in json.loads(run.stdout)["error"]
