"""The sync against real servers, through the library API."""

from __future__ import annotations

import datetime
import json
import threading
import uuid

import pytest
from bson import Int64, ObjectId

from idsync import Job, RunOptions, ScanOrder, Status, sync
from idsync.errors import ConfigError, GuardError, InterruptedRun, LockHeldError
from idsync.mysql.target import MySQLTarget
from tests.conftest import BOTH_TARGETS, MYSQL_URL, Env, mysql_connect

pytestmark = pytest.mark.integration


@BOTH_TARGETS
def test_first_sync_then_nothing_to_do(env: Env) -> None:
    oids = [ObjectId() for _ in range(2500)]
    env.add_source(oids)
    env.init_table()
    report = sync(Job(batch_size=1000), env.settings())
    assert report.status is Status.OK
    assert (report.source_ids, report.missing, report.inserted, report.batches) == (
        2500,
        2500,
        2500,
        3,
    )
    assert env.target_ids() == sorted(str(o) for o in oids)
    again = sync(Job(), env.settings())
    assert (again.target_ids_before, again.present, again.inserted) == (2500, 2500, 0)


@BOTH_TARGETS
@pytest.mark.parametrize("order", [None, ScanOrder.ID_INDEX, ScanOrder.NATURAL])
def test_many_small_batches_in_either_scan_order(env: Env, order: ScanOrder | None) -> None:
    # Read batches of 7 cut the source mid-way through mixed types and repeats (int 5 and
    # "5"), so both paths of the batched diff run, and the read-ahead thread hands over 300.
    oids = [ObjectId() for _ in range(2000)]
    env.add_source([*oids, 5, "5", "x"])
    env.init_table()
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s), (%s)", (str(oids[3]), "orphan"))
    report = sync(Job(batch_size=300), env.settings(read_batch_size=7), scan_order=order)
    assert env.target_ids() == sorted({*map(str, oids), "5", "x", "orphan"})
    assert (report.source_ids, report.present, report.inserted) == (2003, 1, 2001)
    assert [r.reason for r in report.rejected_samples] == [
        "another source id has the same text (e.g. int 5 and '5')"
    ]
    assert report.orphans == 1
    if order is not None:
        assert report.source["scan"] == str(order)
    elif report.source["flavour"] == "ferretdb":  # its explain shows no index scan
        assert report.source["scan"] == str(ScanOrder.NATURAL)


@BOTH_TARGETS
def test_mixed_types_existing_rows_and_orphans_end_exactly_right(env: Env) -> None:
    oids = [ObjectId() for _ in range(5)]
    uid = uuid.uuid4()
    good = [*oids, "trip-cluster-A", "ünïcødé-☃", 42, Int64(2**40), -7, uid]
    bad = [1.5, datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC), True, {"k": 1}, ""]
    env.add_source(good + bad)
    env.init_table()
    pre = [str(oids[0]), "42"]
    orphans = ["only-in-mysql-1", "only-in-mysql-2"]
    for text in pre + orphans:
        env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", (text,))

    report = sync(Job(), env.settings())

    expected = {str(o) for o in oids} | {
        "trip-cluster-A",
        "ünïcødé-☃",
        "42",
        str(2**40),
        "-7",
        str(uid),
    }
    assert env.target_ids() == sorted(expected | set(orphans))
    assert report.status is Status.PARTIAL and report.exit_code == 4
    assert (report.present, report.missing, report.inserted) == (2, 9, 9)
    assert report.rejected == len(bad)
    assert {r.reason for r in report.rejected_samples} == {
        "unsupported type: double",
        "unsupported type: date",
        "unsupported type: bool",
        "unsupported type: document",
        "empty string",
    }
    assert report.orphans == 2 and sorted(report.orphan_samples) == orphans
    assert sync(Job(), env.settings()).inserted == 0


@BOTH_TARGETS
def test_int_and_string_with_the_same_text(env: Env) -> None:
    env.add_source([7, "7"])
    env.init_table()
    report = sync(Job(), env.settings())
    assert env.target_ids() == ["7"]
    assert report.rejected == 1
    assert report.rejected_samples[0].reason.startswith("another source id has the same text")


def test_non_utf8_bytes_in_a_binary_column_are_not_a_source_text(env: Env) -> None:
    """The stored bytes FF are not the id `\\xff` (4 characters): compared as bytes, the id is
    missing and inserted, the stored bytes are an orphan, shown escaped."""
    env.sql(
        "CREATE TABLE cm_cluster_id (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
        " cluster_id VARBINARY(64) NOT NULL UNIQUE)"
    )
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES (X'FF')")
    env.add_source(["\\xff", "plain"])
    for mode in ("--exact", "--fast"):
        checked = env.idsync("check", mode, "--json")
        assert checked.returncode == 4, checked.stdout + checked.stderr
        found = json.loads(checked.stdout)
        assert (found["missing"], found["orphans"]) == (2, 1), mode
    report = sync(Job(), env.settings())
    assert (report.inserted, report.present, report.orphans) == (2, 0, 1)
    assert report.orphan_samples == ["\\xff"]
    stored = sorted(bytes(row[0]) for row in env.sql("SELECT cluster_id FROM cm_cluster_id"))
    assert stored == [b"\\xff", b"plain", b"\xff"]


def test_ids_longer_than_the_column_are_rejected_not_truncated(env: Env) -> None:
    env.sql(
        "CREATE TABLE cm_cluster_id (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
        " cluster_id VARCHAR(10) NOT NULL UNIQUE)"
    )
    env.add_source(["short", "exactly-10", "eleven-char", "x" * 300])
    report = sync(Job(), env.settings())
    assert env.target_ids() == ["exactly-10", "short"]
    assert sorted(r.reason for r in report.rejected_samples) == [
        "too long for column: 11 characters > 10",
        "too long for column: 300 characters > 10",
    ]


def test_characters_the_column_cannot_hold_are_rejected(env: Env) -> None:
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) CHARACTER SET utf8mb3 NOT NULL UNIQUE)"
    )
    env.add_source(["plain", "snow☃", "smile😀"])
    report = sync(Job(), env.settings())
    assert env.target_ids() == ["plain", "snow☃"]
    assert [r.reason for r in report.rejected_samples] == [
        "character outside utf8mb3 (4-byte character)"
    ]


def test_collation_collisions_are_found_and_named(env: Env) -> None:
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) CHARACTER SET utf8mb4"
        " COLLATE utf8mb4_general_ci NOT NULL UNIQUE)"
    )
    env.sql("INSERT INTO cm_cluster_id VALUES ('ABC')")
    env.add_source(["abc", "Xy", "xY", "fine"])
    report = sync(Job(), env.settings())
    stored = env.target_ids()
    assert "abc" not in stored and "fine" in stored
    assert len([s for s in stored if s.lower() == "xy"]) == 1
    reasons = {r.id: r.reason for r in report.rejected_samples}
    assert reasons["abc"] == "collides with stored value 'ABC' under the column's collation"
    assert len(reasons) == 2
    rerun = sync(Job(), env.settings())
    assert rerun.rejected == 2 and rerun.inserted == 0  # reported again, never silently looped


def test_pad_space_collation_collision(env: Env) -> None:
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) CHARACTER SET utf8mb4"
        " COLLATE utf8mb4_bin NOT NULL UNIQUE)"
    )
    env.sql("INSERT INTO cm_cluster_id VALUES ('pad')")
    env.add_source(["pad", "pad "])
    report = sync(Job(), env.settings())
    assert env.target_ids() == ["pad"]
    assert [r.id for r in report.rejected_samples] == ["pad "]


@BOTH_TARGETS
def test_dry_run_writes_nothing(env: Env) -> None:
    ids = [ObjectId() for _ in range(30)]
    env.add_source(ids)
    env.init_table()
    report = sync(Job(), env.settings(), RunOptions(dry_run=True))
    assert (report.missing, report.inserted, report.dry_run) == (30, 0, True)
    # What would be inserted, by name: the first 20.
    assert len(report.missing_samples) == 20 and set(report.missing_samples) <= set(map(str, ids))
    assert env.target_ids() == []


def test_a_held_lock_refuses_after_the_timeout(env: Env) -> None:
    env.add_source([ObjectId()])
    env.init_table()
    with MySQLTarget(env.settings(), Job()) as other:
        other.connect()
        other.lock(0)
        with pytest.raises(LockHeldError, match="another run holds the lock") as info:
            sync(Job(), env.settings(lock_timeout_s=0.5))
        refused = info.value.report
        assert refused is not None and refused.status is Status.REFUSED
    assert env.target_ids() == []
    assert sync(Job(), env.settings(lock_timeout_s=0.5)).inserted == 1


def _read_ahead_threads() -> list[threading.Thread]:
    """The read-ahead threads still alive once each has been given the chance to end (joined;
    pytest's timeout bounds a thread that never would)."""
    for thread in threading.enumerate():
        if thread.name == "idsync-read-ahead":
            thread.join()
    return [t for t in threading.enumerate() if t.name == "idsync-read-ahead"]


def test_no_reading_thread_outlives_a_run_ended_or_refused(env: Env) -> None:
    env.add_source([ObjectId() for _ in range(3000)])
    env.init_table()
    settings = env.settings(read_batch_size=100)  # 30 batches: the thread is still reading
    stopped = threading.Event()
    stopped.set()
    with pytest.raises(InterruptedRun, match="interrupted after 0 committed batches"):
        sync(Job(), settings, stop=stopped)
    assert _read_ahead_threads() == []
    with pytest.raises(GuardError, match="more than the limit"):
        sync(Job(), settings, RunOptions(max_inserts=10))
    assert _read_ahead_threads() == []
    assert sync(Job(), env.settings(read_batch_size=100)).inserted == 3000
    assert _read_ahead_threads() == []


@BOTH_TARGETS
def test_empty_source_with_a_full_target_is_refused(env: Env) -> None:
    env.init_table()
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES ('x')")
    with pytest.raises(GuardError, match="has no ids"):
        sync(Job(), env.settings())
    report = sync(Job(), env.settings(), RunOptions(allow_empty_source=True))
    assert report.status is Status.OK and report.orphans == 1


@BOTH_TARGETS
def test_missing_table_says_run_init(env: Env) -> None:
    env.add_source([ObjectId()])
    with pytest.raises(ConfigError, match="idsync init"):
        sync(Job(), env.settings())


def test_table_without_unique_index_warns(env: Env) -> None:
    env.sql("CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) NOT NULL)")
    env.add_source(["a", "b"])
    report = sync(Job(), env.settings())
    assert env.target_ids() == ["a", "b"]
    assert any("no UNIQUE index" in w for w in report.warnings)


@BOTH_TARGETS
def test_non_key_field_syncs_distinct_values(env: Env) -> None:
    env.mongo_db.trips.insert_many(
        [
            {"user": {"id": "u1"}},
            {"user": {"id": "u2"}},
            {"user": {"id": "u1"}},
            {"user": [{"id": "u3"}, {"id": "u4"}]},
            {"user": {"id": None}},
            {"other": 1},
        ]
    )
    job = Job(
        name="trip-users", collection="trips", field="user.id", table="trip_user", column="user_id"
    )
    env.init_table(job)
    report = sync(job, env.settings())
    assert env.target_ids("trip_user", "user_id") == ["u1", "u2", "u3", "u4"]
    assert report.rejected == 0 and report.inserted == 4
    assert report.source["scan"] == "natural"  # a field's values are read unsorted


def test_rows_written_by_someone_else_meanwhile_cause_no_error(env: Env) -> None:
    env.init_table()
    ids = [f"id-{n}" for n in range(10)]
    with MySQLTarget(env.settings(), Job()) as target:
        target.connect()
        assert list(target.read_id_batches()) == []
        other = mysql_connect(MYSQL_URL, database=env.mysql_url.rsplit("/", 1)[1])
        other.cursor().executemany(
            "INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", [(i,) for i in ids[:4]]
        )
        other.close()
        result = target.insert_batch(ids)
    assert (result.inserted, sorted(result.landed), result.rejected) == (6, sorted(ids), [])
    assert env.target_ids() == sorted(ids)
