"""`idsync watch` against real servers: change streams (mongo-java-server), polling (FerretDB)."""

from __future__ import annotations

import datetime
import json
import os
import signal
import threading
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from bson import ObjectId

from idsync import Job, RunOptions, Settings
from idsync.errors import LockHeldError, TerminalError
from idsync.metrics import Metrics
from idsync.target import Checkpoint
from idsync.watch.health import Health
from idsync.watch.options import WatchMode, WatchOptions
from idsync.watch.sink import Sink
from idsync.watch.watcher import WatchSummary, watch
from tests.conftest import BOTH_TARGETS, WATCH_BOTH_TARGETS, Env, limited_user
from tests.watch_support import (
    Daemon,
    free_port,
    http_get,
    metric,
    wait_until,
)

pytestmark = pytest.mark.integration


def fast(**kw: Any) -> WatchOptions:
    """Options for tests: short waits, so that conditions come true soon."""
    return WatchOptions(max_batch_wait_s=0.05, poll_interval_s=0.2, stuck_after_s=30.0, **kw)


class Running:
    """The library's ``watch()`` in a thread, stopped (and checked) on exit."""

    def __init__(
        self,
        env: Env,
        options: WatchOptions,
        job: Job | None = None,
        mysql_url: str = "",
        run_options: RunOptions | None = None,
    ) -> None:
        self.job = job or Job()
        self.stop = threading.Event()
        self.metrics = Metrics(self.job.name)
        self.health = Health(options.stuck_after_s)
        self.summary: WatchSummary | None = None
        self.error: BaseException | None = None
        settings = env.settings(lock_timeout_s=1.0)
        if mysql_url:
            settings = Settings(mongo_uri=env.mongo_uri, mysql_url=mysql_url, lock_timeout_s=1.0)
        self._args = (settings, options)
        self.run_options = run_options
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        settings, options = self._args
        try:
            self.summary = watch(
                self.job, settings, options, self.stop, metrics=self.metrics, health=self.health,
                run_options=self.run_options,
            )  # fmt: skip
        except BaseException as exc:
            self.error = exc

    def ended(self, timeout: float = 60.0) -> BaseException | None:
        """Wait for ``watch()`` to end by itself; the error it raised (taken: not a failure)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "watch() did not end by itself"
        error, self.error = self.error, None
        return error

    def value(self, name: str) -> float | None:
        return metric(self.metrics.render().decode(), name)

    def __enter__(self) -> Running:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "watch() did not return after stop was set"
        if kind is None:
            assert self.error is None, f"watch() failed: {self.error!r}"


def _count(env: Env) -> int:
    return int(env.sql("SELECT COUNT(*) FROM cm_cluster_id")[0][0])


@WATCH_BOTH_TARGETS
def test_change_stream_first_pass_then_every_new_id(watch_env: Env) -> None:
    env = watch_env
    env.init_table()
    before = [ObjectId() for _ in range(20)]
    env.add_source(before)
    coll = env.mongo_db["cluster_trips"]
    with Running(env, fast()) as running:
        wait_until(lambda: _count(env) == 20, "the first full pass")
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")
        during: list[ObjectId] = []
        for n in range(1, 30):  # single inserts and bursts, as an application makes them
            batch = [ObjectId() for _ in range(n)]
            coll.insert_many([{"_id": oid, "trips": []} for oid in batch])
            during += batch
        wait_until(lambda: _count(env) == 20 + len(during), "every inserted id")
        assert running.value("idsync_ids_inserted_total") == 20 + len(during)
        assert running.health.report()[0]
    assert running.summary is not None
    assert running.summary.mode == "change-stream" and running.summary.full_passes == 1
    assert env.target_ids() == sorted(str(o) for o in before + during)
    [(mode, token, last_id)] = env.sql(
        "SELECT mode, resume_token, last_seen_id FROM idsync_state WHERE job = %s",
        ("update-cluster-id",),
    )
    assert mode == "change-stream" and json.loads(token)["_data"]
    assert last_id == str(during[-1])


def test_polling_follows_new_ids_and_the_full_pass_catches_the_rest(env: Env) -> None:
    env.init_table()
    env.create_owned()
    coll = env.mongo_db["cluster_trips"]
    options = fast()
    with Running(env, options) as running:
        wait_until(lambda: running.health.report()[1]["mode"] == "polling", "polling on FerretDB")
        new = [ObjectId() for _ in range(40)]
        coll.insert_many([{"_id": oid} for oid in new])
        # Polling cannot see these: a string id, and an ObjectId made with an old clock.
        old = ObjectId.from_datetime(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        coll.insert_many([{"_id": "cluster-as-string"}, {"_id": old}])
        marker = ObjectId()
        coll.insert_one({"_id": marker})  # inserted after them: once it is in, they were polled
        wait_until(lambda: str(marker) in env.target_ids(), "the polled ids")
    assert env.target_ids() == sorted(str(o) for o in [*new, marker])
    assert running.summary is not None and running.summary.mode == "polling"

    reconciling = fast(initial_pass=False, reconcile_every_s=1.0)
    with Running(env, reconciling) as running:
        wait_until(lambda: "cluster-as-string" in env.target_ids(), "the periodic full pass")
        assert str(old) in env.target_ids()
    commands = {row[0] for row in env.sql("SELECT command FROM idsync_runs")}
    assert commands == {"watch"}  # the watcher's full passes are in the run history


@WATCH_BOTH_TARGETS
def test_cli_serves_health_and_metrics_and_stops_on_sigterm(watch_env: Env, tmp_path: Path) -> None:
    env = watch_env
    env.init_table()
    port = free_port()
    daemon = Daemon(
        tmp_path, env.mongo_uri, env.mysql_url,
        ["--http", f"127.0.0.1:{port}", "--max-batch-wait", "0.05", "--json"],
    ).start()  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: "change-stream" in http_get(f"{url}/healthz")[1], "/healthz")
        status, body = http_get(f"{url}/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        ids = [ObjectId() for _ in range(25)]
        env.add_source(ids)
        wait_until(lambda: _count(env) == 25, "the inserted ids")
        status, text = http_get(f"{url}/metrics")
        assert status == 200
        for name in (
            "idsync_ids_seen_total",
            "idsync_ids_inserted_total",
            "idsync_ids_rejected_total",
            "idsync_lag_seconds",
            "idsync_last_success_timestamp_seconds",
        ):
            assert metric(text, name) is not None, name
        assert metric(text, "idsync_ids_inserted_total") == 25
        assert metric(text, "idsync_healthy") == 1
        assert 'idsync_mode{idsync_job="update-cluster-id",idsync_mode="change-stream"} 1.0' in text
        assert http_get(f"{url}/nope")[0] == 404
        daemon.send(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.stderr
    finally:
        daemon.kill()
    summary = json.loads(daemon.stdout)
    assert (summary["status"], summary["mode"], summary["inserted"]) == (
        "stopped",
        "change-stream",
        25,
    )
    assert "SIGTERM received" in daemon.stderr


@WATCH_BOTH_TARGETS
def test_one_watcher_per_job_and_target(watch_env: Env, tmp_path: Path) -> None:
    env = watch_env
    env.init_table()
    with Running(env, fast()) as running:
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the first")
        args = ["--lock-timeout", "0.5", "--json"]
        second = Daemon(tmp_path, env.mongo_uri, env.mysql_url, args)
        assert second.start().wait() == 3, second.stderr
        assert "another watcher of job update-cluster-id" in second.stderr
        assert "waiting up to 0.5 s for the lock" in second.stderr  # said at once
        # ... and for whom: the server's session of the watcher (this process on PostgreSQL).
        waiting = next(line for line in second.stderr.splitlines() if "waiting up to" in line)
        holder = f"pid={os.getpid()})" if env.kind == "postgres" else "held by connection "
        assert holder in waiting, waiting
        assert "(held by " in json.loads(second.stdout)["error"]
        assert json.loads(second.stdout)["status"] == "refused"


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--poll-window", "2000000000"], "poll_window_s"),
        (["--poll-window", "1e12"], "poll_window_s"),
        (["--poll-window", "nan"], "poll_window_s"),
        (["--stuck-after", "inf"], "stuck_after_s"),
        (["--reconcile-every", "99999999999d"], "reconcile_every_s"),
        (["--backoff-max", "1e12"], "backoff_max_s"),
    ],
)
def test_out_of_range_durations_are_config_errors(env: Env, flags: list[str], named: str) -> None:
    """Refused before anything is read, not accepted and crashing after the first full pass."""
    env.init_table()
    env.add_source([ObjectId()])
    done = env.idsync("watch", "--json", *flags, timeout=60)
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stdout)["status"] == "failed"
    assert named in done.stderr
    assert env.tables() == ["cm_cluster_id"]  # no idsync_state: nothing written
    assert env.target_ids() == []


def test_change_streams_required_but_missing_is_a_config_error(env: Env) -> None:
    env.init_table()
    done = env.idsync("watch", "--mode", "change-stream", "--skip-initial-pass", timeout=60)
    assert done.returncode == 2, done.stderr
    assert "cannot open a change stream" in done.stderr


def test_a_watchers_lock_and_state_row_name_the_column_as_the_server_does(env: Env) -> None:
    """`CLUSTER_ID` and `cluster_id` are one column: one watcher lock, one checkpoint row."""
    env.init_table()
    upper = Sink(
        env.settings(lock_timeout_s=0.5), replace(Job(), column="CLUSTER_ID"), threading.Event()
    )
    upper.open()
    try:
        upper.save(Checkpoint(mode="polling"))
        assert env.sql("SELECT `target` FROM idsync_state") == [("cm_cluster_id.cluster_id",)]
        lower = Sink(env.settings(lock_timeout_s=0.5), Job(), threading.Event())
        with pytest.raises(LockHeldError):
            lower.open()
    finally:
        upper.close()


_IDS = "SELECT, INSERT, UPDATE ON cm_cluster_id"
_STATE_NO_UPDATE = "SELECT, INSERT, CREATE ON idsync_state"
# What each server says when it refuses: the state table (MySQL: creating it, IF NOT EXISTS
# asks for CREATE even when it is there; PostgreSQL: reading it), then updating its row.
_NO_CREATE = {"mysql": "CREATE command denied", "postgres": "permission denied for table"}
_NO_UPDATE = {"mysql": "UPDATE command denied", "postgres": "permission denied for table"}


@pytest.mark.parametrize(
    ("watch_env", "grants", "denied"),
    [
        (kind, grants, denied[kind])
        for kind in ("mysql", "postgres")
        for grants, denied in (([_IDS], _NO_CREATE), ([_IDS, _STATE_NO_UPDATE], _NO_UPDATE))
    ],
    indirect=["watch_env"],
)
def test_a_missing_privilege_ends_the_watcher_and_healthz_says_why(
    watch_env: Env, grants: list[str], denied: str
) -> None:
    """A user that may write the ids table but not `idsync_state` as the watcher needs: no
    retry fixes that. /healthz says so at once (not only after --stuck-after), then the
    watcher ends with the error instead of trying forever."""
    env = watch_env
    env.init_table()
    env.create_owned()  # the state table is there
    env.add_source([ObjectId()])
    with limited_user(env, grants) as url, Running(env, fast(), mysql_url=url) as running:
        wait_until(lambda: "error" in running.health.report()[1], "a failed attempt")
        healthy, details = running.health.report()
        assert not healthy and details["status"] == "failing", details
        assert denied in details["error"]
        assert details["seconds_since_progress"] < 30  # well before stuck_after_s
        error = running.ended()
    assert isinstance(error, TerminalError) and denied in str(error)


@WATCH_BOTH_TARGETS
def test_update_denied_on_a_stored_checkpoint_ends_the_watcher(watch_env: Env) -> None:
    """Following from a stored checkpoint: an idle moment is not progress that excuses the
    failed saves around it; the watcher ends, /healthz failing, instead of flapping."""
    env = watch_env
    env.init_table()
    with Running(env, fast()) as running:
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")
    options = fast(initial_pass=False, checkpoint_every_s=0.05)
    grants = [_IDS, _STATE_NO_UPDATE]
    with limited_user(env, grants) as url, Running(env, options, mysql_url=url) as running:
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "following")
        env.add_source([ObjectId()])
        error = running.ended()
        assert running.health.report()[1]["status"] == "failing"
    assert isinstance(error, TerminalError) and _NO_UPDATE[env.kind] in str(error)


_POISON_TRIGGER = {
    "mysql": [
        "CREATE TRIGGER no_poison BEFORE INSERT ON cm_cluster_id FOR EACH ROW"
        " IF NEW.cluster_id = 'poison' THEN"
        " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poison refused'; END IF"
    ],
    "postgres": [
        "CREATE FUNCTION no_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.cluster_id = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER no_poison BEFORE INSERT ON cm_cluster_id"
        " FOR EACH ROW EXECUTE FUNCTION no_poison()",
    ],
}


@WATCH_BOTH_TARGETS
def test_a_batch_that_always_fails_the_same_way_ends_the_watcher(watch_env: Env) -> None:
    env = watch_env
    env.init_table()
    for statement in _POISON_TRIGGER[env.kind]:
        env.sql(statement)
    with Running(env, fast()) as running:
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")
        env.add_source(["poison"])
        error = running.ended()
        assert running.health.report()[1]["status"] == "failing"
    assert isinstance(error, TerminalError) and "poison refused" in str(error)
    assert running.metrics.reconnects._value.get() >= 1  # tried again before giving up


@WATCH_BOTH_TARGETS
def test_first_full_pass_refused_with_a_stored_token_ends_with_exit_3(
    watch_env: Env, tmp_path: Path
) -> None:
    """Pointed at an empty collection while the table has rows: exit 3, as without a
    checkpoint, not a warning and following forever."""
    env = watch_env
    env.init_table()
    env.add_source([ObjectId()])
    with Running(env, fast()) as running:
        wait_until(lambda: _count(env) == 1, "the first pass")
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")
    [(token,)] = env.sql("SELECT resume_token FROM idsync_state")
    assert token
    env.mongo_db["cluster_trips"].delete_many({})
    daemon = Daemon(tmp_path, env.mongo_uri, env.mysql_url, ["--json"]).start()
    try:
        assert daemon.wait(timeout=60) == 3, daemon.stderr
    finally:
        daemon.kill()
    assert json.loads(daemon.stdout)["status"] == "refused"
    assert "has no ids" in daemon.stderr


@WATCH_BOTH_TARGETS
def test_int_and_string_with_the_same_text_are_told_apart_as_a_full_pass_does(
    watch_env: Env,
) -> None:
    env = watch_env
    env.init_table()
    coll = env.mongo_db["cluster_trips"]
    options = WatchOptions(max_batch_wait_s=1.0, poll_interval_s=0.2, stuck_after_s=30.0)
    with Running(env, options) as running:
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")
        coll.insert_many([{"_id": 5}, {"_id": "5"}, {"_id": "marker"}])
        wait_until(lambda: "marker" in env.target_ids(), "the batch")
    assert env.target_ids() == ["5", "marker"]
    assert running.summary is not None and running.summary.rejected == 1


@BOTH_TARGETS
def test_polling_into_a_table_without_unique_index_stores_each_id_once(env: Env) -> None:
    """Each poll looks back a window; its ids, the first full pass's and a restarted watcher's
    are the same ids again: with no UNIQUE index to refuse them, they must be skipped."""
    env.sql("CREATE TABLE cm_cluster_id (cluster_id varchar(64) NOT NULL)")
    ids = [ObjectId() for _ in range(10)]
    env.add_source(ids)
    options = fast(mode=WatchMode.POLL)
    for _ in range(2):  # and once more, started again from its checkpoint
        with Running(env, options):
            wait_until(lambda: _count(env) >= 10, "the ids")
            later = [ObjectId()]
            env.add_source(later)
            ids += later
            wanted = len(ids)
            wait_until(lambda: _count(env) >= wanted, "the new id")  # noqa: B023 (waited here)
            threading.Event().wait(1.0)  # a few polls over the same window
    rows = env.target_ids()
    assert rows == sorted(str(i) for i in ids), rows
