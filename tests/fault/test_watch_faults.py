"""`idsync watch` under faults: kill -9, SIGTERM, a MongoDB restart, a killed target connection
(MySQL KILL, PostgreSQL pg_terminate_backend), an unusable stored resume token. The daemon runs
as a real process; nothing is mocked.

Exactly-once is checked on a target column *without* a UNIQUE index: there, a replayed id would
be a second row, so no duplicates proves that each checkpoint committed with its batch.
"""

from __future__ import annotations

import datetime
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient

from idsync import Job
from idsync.target import Checkpoint
from idsync.targets import open_target
from tests.conftest import WATCH_BOTH_TARGETS, Env
from tests.watch_support import (
    MONGO_JAVA_JAR,
    Daemon,
    PrivateMongoJava,
    Writer,
    free_port,
    http_get,
    metric,
    wait_until,
)

pytestmark = pytest.mark.fault

FOLLOW = ["--skip-initial-pass", "--max-batch-wait", "0.05", "--batch-size", "50", "--no-log-ids"]


def _plain_table(env: Env) -> None:
    """The ids table without a UNIQUE index: duplicates would show."""
    if env.kind == "postgres":
        env.sql(
            "CREATE TABLE cm_cluster_id (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            ' cluster_id text COLLATE "C" NOT NULL)'
        )
        env.sql("CREATE INDEX ON cm_cluster_id (cluster_id)")
        return
    env.sql(
        "CREATE TABLE cm_cluster_id (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
        " cluster_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL, KEY (cluster_id))"
    )


def _store_checkpoint(env: Env, checkpoint: Checkpoint) -> None:
    """A checkpoint in the state table, as an earlier watcher would have left it."""
    with open_target(env.settings(), Job()) as target:
        target.connect()
        target.create_owned_tables()
        target.save_checkpoint(checkpoint)


def _kill_the_watchers_connections(env: Env) -> None:
    """The server ends every session of the test's database but the test's own."""
    if env.kind == "postgres":
        killed = env.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
            " datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert killed, "the watcher's connection was not found"
        return
    own = env.sql("SELECT CONNECTION_ID()")[0][0]
    database = env.mysql_url.rsplit("/", 1)[1]
    theirs = env.sql(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> %s",
        (database, own),
    )
    assert theirs, "the watcher's connection was not found"
    for (conn_id,) in theirs:
        env.sql(f"KILL CONNECTION {int(conn_id)}")


def _rows(env: Env) -> list[str]:
    return env.target_ids()


def _count(env: Env) -> int:
    return int(env.sql("SELECT COUNT(*) FROM cm_cluster_id")[0][0])


def _has_checkpoint(env: Env) -> bool:
    return "idsync_state" in env.tables() and bool(env.sql("SELECT 1 FROM idsync_state"))


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Every daemon a test starts is killed at its end, whatever happened."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


@pytest.fixture
def mongo_java(tmp_path: Path) -> Iterator[PrivateMongoJava]:
    if not MONGO_JAVA_JAR.exists():
        pytest.fail(f"{MONGO_JAVA_JAR.name} is not built: run `dev/services up mongo-java`")
    server = PrivateMongoJava(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@WATCH_BOTH_TARGETS
def test_kill9_mid_stream_then_restart_nothing_missing_nothing_twice(
    watch_env: Env, tmp_path: Path, daemons: list[Daemon]
) -> None:
    env = watch_env
    _plain_table(env)
    daemon = Daemon(tmp_path, env.mongo_uri, env.mysql_url, FOLLOW)
    daemons.append(daemon.start())
    wait_until(lambda: _has_checkpoint(env), "the stream to open")
    writer = Writer(env.mongo_db["cluster_trips"], total=1500).start()
    wait_until(lambda: _count(env) >= 300, "a few batches")
    daemon.send(signal.SIGKILL)
    assert daemon.wait() == -signal.SIGKILL
    daemon.start()  # the same command: resumes from the stored checkpoint
    expected = writer.join()
    wait_until(lambda: _count(env) >= len(expected), "every id after the restart")
    wait_until(lambda: "from the last checkpoint" in daemon.stderr, "the resume to be logged", 10)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.stderr
    assert _rows(env) == expected  # nothing missing, nothing twice


@WATCH_BOTH_TARGETS
def test_sigterm_commits_the_batch_with_its_checkpoint(
    watch_env: Env, tmp_path: Path, daemons: list[Daemon]
) -> None:
    env = watch_env
    _plain_table(env)
    daemon = Daemon(tmp_path, env.mongo_uri, env.mysql_url, [*FOLLOW, "--json"])
    daemons.append(daemon.start())
    wait_until(lambda: _has_checkpoint(env), "the stream to open")
    writer = Writer(env.mongo_db["cluster_trips"], total=600).start()
    wait_until(lambda: _count(env) >= 100, "a few batches")
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.stderr
    summary = json.loads(daemon.stdout)
    assert summary["status"] == "stopped" and summary["inserted"] == _count(env)
    [(last_id,)] = env.sql("SELECT last_seen_id FROM idsync_state")
    assert last_id in _rows(env)  # the checkpoint names an id that was committed with it
    daemon.start()
    expected = writer.join()
    wait_until(lambda: _count(env) >= len(expected), "the rest after the restart")
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.stderr
    assert _rows(env) == expected


def test_mongodb_restart_mid_stream(
    mongo_java: PrivateMongoJava, env: Env, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """In memory, the restarted server starts empty: the ids written after it must arrive."""
    env.init_table()
    name = env.mongo_db.name
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_java.uri)
    client[name].create_collection("cluster_trips")  # a source that does not exist is an error
    port = free_port()
    args = [*FOLLOW, "--http", f"127.0.0.1:{port}", "--connect-timeout", "1"]
    args += ["--backoff-max", "1", "--stuck-after", "2"]
    daemon = Daemon(tmp_path, f"{mongo_java.uri}{name}", env.mysql_url, args)
    daemons.append(daemon.start())
    health = f"http://127.0.0.1:{port}/healthz"
    with client:
        wait_until(lambda: "change-stream" in http_get(health)[1], "the stream to open")
        before = [ObjectId() for _ in range(30)]
        client[name]["cluster_trips"].insert_many([{"_id": oid} for oid in before])
        wait_until(lambda: _count(env) == 30, "the ids before the restart")
    mongo_java.kill()
    wait_until(lambda: http_get(health)[0] == 503, "/healthz to report the watcher stuck")
    assert "MongoDB" in json.loads(http_get(health)[1]).get("error", "MongoDB")
    mongo_java.start()
    after = [ObjectId() for _ in range(30)]
    client = MongoClient(mongo_java.uri)
    with client:
        client[name]["cluster_trips"].insert_many([{"_id": oid} for oid in after])
        wait_until(lambda: _count(env) == 60, "the ids after the restart")
    wait_until(lambda: http_get(health)[0] == 200, "/healthz to recover")
    text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
    assert (metric(text, "idsync_reconnects_total") or 0) >= 1
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.stderr
    assert env.target_ids() == sorted(str(o) for o in before + after)


@WATCH_BOTH_TARGETS
def test_target_connection_killed_mid_stream(
    watch_env: Env, tmp_path: Path, daemons: list[Daemon]
) -> None:
    env = watch_env
    env.init_table()
    daemon = Daemon(tmp_path, env.mongo_uri, env.mysql_url, [*FOLLOW, "--backoff-max", "1"])
    daemons.append(daemon.start())
    wait_until(lambda: _has_checkpoint(env), "the stream to open")
    writer = Writer(env.mongo_db["cluster_trips"], total=400).start()
    wait_until(lambda: _count(env) >= 50, "a few batches")
    _kill_the_watchers_connections(env)
    expected = writer.join()
    wait_until(lambda: _count(env) >= len(expected), "every id after the reconnection")
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.stderr
    assert "trying again" in daemon.stderr
    assert env.target_ids() == expected


@WATCH_BOTH_TARGETS
def test_invalid_stored_resume_token_gap_pass_then_a_new_stream(
    watch_env: Env, tmp_path: Path, daemons: list[Daemon]
) -> None:
    env = watch_env
    env.init_table()
    now = datetime.datetime.now(datetime.UTC)
    bad = Checkpoint(
        "change-stream",
        resume_token='{"_data": "not a resume token"}',
        last_seen_time=now - datetime.timedelta(seconds=5),
    )
    _store_checkpoint(env, bad)
    coll = env.mongo_db["cluster_trips"]
    missed = [ObjectId() for _ in range(30)]  # written while no watcher ran
    coll.insert_many([{"_id": oid} for oid in missed])
    ancient = ObjectId.from_datetime(now - datetime.timedelta(days=3))
    coll.insert_one({"_id": ancient})  # older than the gap: left to the next full pass
    daemon = Daemon(tmp_path, env.mongo_uri, env.mysql_url, FOLLOW)
    daemons.append(daemon.start())
    wait_until(lambda: _count(env) == 30, "the gap pass")
    new = [ObjectId() for _ in range(20)]
    coll.insert_many([{"_id": oid} for oid in new])
    wait_until(lambda: _count(env) == 50, "the new stream")
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.stderr
    assert "stored resume token unusable" in daemon.stderr and "gap pass" in daemon.stderr
    assert env.target_ids() == sorted(str(o) for o in missed + new)
    [(token,)] = env.sql("SELECT resume_token FROM idsync_state")
    assert json.loads(token)["_data"] != "not a resume token"


def test_backoff_starts_over_once_the_watcher_recovers(
    mongo_java: PrivateMongoJava, env: Env, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Pauses grow while MongoDB is away; once following again, the next outage starts from
    the shortest pause, not from where the last one ended."""
    env.init_table()
    name = env.mongo_db.name
    setup: MongoClient[dict[str, Any]] = MongoClient(mongo_java.uri)
    with setup:
        setup[name].create_collection("cluster_trips")  # a missing source is a config error
    args = [*FOLLOW, "--connect-timeout", "1", "--backoff-max", "4"]
    daemon = Daemon(tmp_path, f"{mongo_java.uri}{name}", env.mysql_url, args)
    daemons.append(daemon.start())
    wait_until(lambda: "by change stream" in daemon.stderr, "the stream to open")
    mongo_java.kill()
    wait_until(lambda: "trying again in 4.0 s" in daemon.stderr, "the pause to grow", 120)
    mongo_java.start()
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_java.uri)
    with client:
        oid = ObjectId()
        client[name]["cluster_trips"].insert_one({"_id": oid})
        wait_until(lambda: _count(env) == 1, "following again", 120)
    seen = len(daemon.stderr)
    mongo_java.kill()
    wait_until(lambda: "trying again in" in daemon.stderr[seen:], "the next failure", 120)
    first = daemon.stderr[seen:].split("trying again in ", 1)[1].split(" s", 1)[0]
    assert first == "0.5", daemon.stderr[seen:]
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.stderr


@WATCH_BOTH_TARGETS
def test_a_refused_resume_keeps_the_token_unless_the_position_is_gone(
    watch_env: Env, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The server refuses a well-formed token without a code that says the position is gone
    (mongo-java-server answers a token it did not make with no code at all): the token is
    kept, not traded for a new stream and a gap pass, and the watcher ends loudly."""
    env = watch_env
    env.init_table()
    foreign = '{"_data": "8200000001000000012B0229296E04"}'
    _store_checkpoint(env, Checkpoint("change-stream", resume_token=foreign))
    env.add_source([ObjectId()])
    daemon = Daemon(tmp_path, env.mongo_uri, env.mysql_url, [*FOLLOW, "--json"])
    daemons.append(daemon.start())
    assert daemon.wait() == 1, daemon.stderr
    assert "refused opening a change stream at its checkpoint" in daemon.stderr
    assert "gap pass" not in daemon.stderr
    assert json.loads(daemon.stdout)["status"] == "failed"
    assert env.sql("SELECT resume_token FROM idsync_state") == [(foreign,)]
