"""`doctor` says ok only when the commands will not fail for a reason it could have seen.

Privileges are tried on the server itself, with a real user of partial grants: what the
server refuses to `doctor` is what it would refuse to `run` and `watch`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bson import ObjectId

from tests.conftest import BOTH_TARGETS, Env, limited_user

GrantFn = Callable[..., str]


@pytest.fixture
def user(env: Env) -> Iterator[GrantFn]:
    """Users of the test's own, each with only the given grants; returns its URL."""
    with contextlib.ExitStack() as users:

        def grant(*grants: str) -> str:
            return users.enter_context(limited_user(env, grants))

        yield grant


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
# What each server says when it refuses a statement on a table, and creating one.
_DENIED = {"mysql": "{} command denied", "postgres": "permission denied for table"}
_NO_CREATE = {"mysql": "CREATE command denied", "postgres": "permission denied for schema"}


def denied(env: Env, privilege: str) -> str:
    return _DENIED[env.kind].format(privilege)


@BOTH_TARGETS
def test_without_a_write_privilege_doctor_fails_where_run_fails(ready: Env, user: GrantFn) -> None:
    # MySQL's insert asks for UPDATE too (ON DUPLICATE KEY UPDATE); PostgreSQL's for INSERT only.
    withheld = {"mysql": "UPDATE", "postgres": "INSERT"}[ready.kind]
    url = user(_TARGET.replace(f", {withheld}", ""), _STATE, _RUNS)
    code, found = _doctor(ready, url)
    assert code == 1
    assert found["privileges"]["level"] == "fail"
    assert denied(ready, withheld) in found["privileges"]["detail"]
    assert "GRANT SELECT, INSERT" in found["privileges"]["fix"]
    run = ready.idsync("run", "--json", env={"IDSYNC_MYSQL_URL": url})
    assert run.returncode == 1 and denied(ready, withheld) in json.loads(run.stdout)["error"]


@BOTH_TARGETS
def test_every_grant_the_commands_need_is_ok(ready: Env, user: GrantFn) -> None:
    url = user(_TARGET, _STATE, _RUNS)
    code, found = _doctor(ready, url)
    assert {c: found[c]["level"] for c in ("privileges", "state", "history")} == {
        "privileges": "ok",
        "state": "ok",
        "history": "ok",
    }
    assert code == 0, found
    assert ready.idsync("run", env={"IDSYNC_MYSQL_URL": url}).returncode == 0


@BOTH_TARGETS
def test_state_privileges_the_watcher_needs(ready: Env, user: GrantFn) -> None:
    url = user(_TARGET, "SELECT ON idsync_state", _RUNS)
    code, found = _doctor(ready, url)
    assert code == 1 and found["state"]["level"] == "fail"
    detail = found["state"]["detail"]
    if ready.kind == "mysql":  # asked even when the table is there; PostgreSQL only makes it
        assert _NO_CREATE[ready.kind] in detail  # when it is missing (test_watch)
    assert denied(ready, "INSERT, UPDATE") in detail or denied(ready, "INSERT") in detail
    assert "idsync watch" in detail


@BOTH_TARGETS
def test_state_upsert_needs_update(ready: Env, user: GrantFn) -> None:
    url = user(_TARGET, "SELECT, INSERT ON idsync_state", _RUNS)
    code, found = _doctor(ready, url)
    assert code == 1 and denied(ready, "UPDATE") in found["state"]["detail"], found["state"]


@BOTH_TARGETS
def test_state_table_to_be_created_needs_create(ready: Env, user: GrantFn) -> None:
    ready.sql("DROP TABLE idsync_state")
    url = user(_TARGET, _RUNS)
    code, found = _doctor(ready, url)
    assert code == 1 and _NO_CREATE[ready.kind] in found["state"]["detail"]
    # With the database's grants it will be created and used: ok.
    url = user("SELECT, INSERT, UPDATE, CREATE ON *")
    code, found = _doctor(ready, url)
    assert found["state"]["level"] == "ok", found["state"]


@BOTH_TARGETS
def test_history_that_cannot_be_written_is_not_ok(ready: Env, user: GrantFn) -> None:
    url = user(_TARGET, _STATE, "SELECT ON idsync_runs")
    _code, found = _doctor(ready, url)
    assert found["history"]["level"] == "warn"
    assert denied(ready, "INSERT") in found["history"]["detail"]
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


@BOTH_TARGETS
def test_a_mongodb_uri_that_does_not_resolve_is_a_finding(ready: Env) -> None:
    uri = "mongodb+srv://cluster0.example.invalid/maas"
    done = ready.idsync("doctor", "--json", env={"IDSYNC_MONGO_URI": uri})
    assert done.returncode == 1, done.stderr
    found = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    assert found["mongodb"]["level"] == "fail" and "DNS" in found["mongodb"]["detail"]
    assert found["privileges"]["level"] == "ok"  # the target is still examined


@BOTH_TARGETS
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
