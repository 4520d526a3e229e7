"""Soft delete: `--orphan-action mark:<column>` stamps an orphan's row instead of deleting it,
reads only unmarked rows as the target, and clears the mark when the id comes back."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from bson import ObjectId

from idsync import Job, RunOptions, Settings
from idsync.check import check
from idsync.check.checker import CheckOptions
from idsync.doctor import diagnose
from idsync.errors import ConfigError
from idsync.run.sync import sync
from idsync.work.worker import WorkOptions, work
from tests.conftest import BOTH_TARGETS, WATCH_BOTH_TARGETS, Env, limited_user
from tests.integration.test_mirror import _child, _oids, _refer, racing
from tests.integration.test_watch import Running, fast
from tests.watch_support import wait_until

SOFT = Job(orphan_action="mark:deleted_at")
MIRROR = replace(SOFT, delete_orphans=True)


def _fill(env: Env, source: list[str], orphans: list[str], job: Job = SOFT) -> None:
    env.add_source([ObjectId(text) for text in source])
    env.init_table(job)
    cur = env.mysql.cursor()
    rows = [(text,) for text in source + orphans]
    cur.executemany("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", rows)
    if env.kind == "mysql":
        env.mysql.commit()


def _marked(env: Env) -> list[str]:
    rows = env.sql("SELECT cluster_id FROM cm_cluster_id WHERE deleted_at IS NOT NULL")
    return sorted(row[0] for row in rows)


def _unmarked(env: Env) -> list[str]:
    rows = env.sql("SELECT cluster_id FROM cm_cluster_id WHERE deleted_at IS NULL")
    return sorted(row[0] for row in rows)


def _soft(env: Env, job: Job = SOFT, **kw: Any) -> Any:
    options = RunOptions(delete_orphans=True, log_ids=False, record_history=False, **kw)
    return sync(job, env.settings(), options)


@BOTH_TARGETS
def test_orphans_are_marked_kept_and_restored_when_they_come_back(env: Env) -> None:
    source, orphans = _oids(2000), _oids(12)
    _fill(env, source, orphans)
    report = _soft(env)
    assert (report.deleted, report.orphans, report.status) == (12, 12, "ok")
    assert report.orphan_action == "mark:deleted_at"
    assert _marked(env) == orphans and _unmarked(env) == source
    assert env.target_ids() == sorted(source + orphans)  # nothing deleted

    again = _soft(env)  # a marked row is not the target's: no orphan, nothing missing
    assert (again.orphans, again.deleted, again.missing, again.present) == (0, 0, 0, 2000)
    assert again.target_ids_before == 2000

    env.add_source([ObjectId(orphans[3]), ObjectId(orphans[7])])  # they come back
    back = _soft(env)
    assert (back.restored, back.inserted, back.missing, back.deleted) == (2, 0, 2, 0)
    assert back.concurrent == 0
    assert _marked(env) == sorted(set(orphans) - {orphans[3], orphans[7]})


@BOTH_TARGETS
def test_a_run_that_keeps_orphans_still_restores_and_a_dry_run_marks_nothing(env: Env) -> None:
    source, orphans = _oids(300), _oids(5)
    _fill(env, source, orphans)
    dry = _soft(env, dry_run=True)
    assert dry.deleted == 5 and _marked(env) == []
    _soft(env)
    env.add_source([ObjectId(orphans[0])])
    fresh = _oids(3)
    env.add_source([ObjectId(text) for text in fresh])
    report = sync(SOFT, env.settings(), RunOptions(log_ids=False, record_history=False))
    assert (report.restored, report.inserted, report.orphans, report.deleted) == (1, 3, 0, 0)
    assert _unmarked(env) == sorted([*source, orphans[0], *fresh])


@BOTH_TARGETS
def test_check_compares_the_unmarked_rows(env: Env) -> None:
    source, orphans = _oids(3000), _oids(20)
    _fill(env, source, orphans)
    _soft(env)
    for exact in (False, True):
        report = check(SOFT, env.settings(), CheckOptions(exact))
        assert (report.status, report.missing, report.orphans) == ("ok", 0, 0), report
    blind = Job()  # the same table read without the mark: the marked rows are orphans
    assert check(blind, env.settings(), CheckOptions(True)).orphans == 20


@BOTH_TARGETS
def test_workers_work_and_the_merge_plan_read_unmarked_rows(env: Env) -> None:
    source, orphans = _oids(4000), _oids(10)
    _fill(env, source, orphans)
    _soft(env)
    env.add_source([ObjectId(text) for text in orphans[:4]])
    settings = env.settings(workers=3, range_reads="always")
    report = sync(SOFT, settings, RunOptions(log_ids=False, record_history=False))
    assert (report.restored, report.inserted, report.plan) == (4, 0, "ranges")
    merge = sync(SOFT, env.settings(plan="merge"), RunOptions(log_ids=False))
    assert (merge.missing, merge.orphans, merge.present) == (0, 0, 4004)
    env.add_source([ObjectId(text) for text in orphans[4:6]])
    worked = work(SOFT, env.settings(), WorkOptions(ranges=3))
    assert (worked.status, worked.restored, worked.inserted, worked.concurrent) == ("ok", 2, 0, 0)
    assert _marked(env) == orphans[6:]


@BOTH_TARGETS
def test_a_marked_row_a_foreign_key_references_is_marked_all_the_same(env: Env) -> None:
    """Marking changes no key: a referencing row (and a cascade) is untouched."""
    source, orphans = _oids(200), _oids(4)
    _fill(env, source, orphans)
    _child(env, "CASCADE")
    _refer(env, [orphans[1]])
    report = _soft(env)
    assert (report.deleted, report.kept_referenced, report.status) == (4, 0, "ok")
    assert env.sql("SELECT cluster_ref FROM trip") == [(orphans[1],)]


@BOTH_TARGETS
def test_a_writer_racing_the_marks_loses_nothing(env: Env) -> None:
    """Another writer brings orphans back (document first, then the row unmarked by idsync's
    writer, as a watcher of the job does) while the run marks them: every id the source has
    ends unmarked."""
    source, orphans = _oids(300), _oids(3000)
    _fill(env, source, orphans)
    back = orphans[::7]
    racing(env, back, SOFT, lambda: _soft(env, replace(SOFT, batch_size=100), force=True))
    assert set(back) | set(source) <= set(_unmarked(env))


@BOTH_TARGETS
@pytest.mark.parametrize(
    ("ddl", "problem"),
    [
        (None, "has no column deleted_at"),
        ("INT NULL", "a date and time"),
        ("{timestamp} NOT NULL DEFAULT {now}", "must allow NULL"),
        ("{timestamp} NULL DEFAULT {now}", "default to NULL"),
        ("{timestamp} {generated}", "set by statements alone"),
    ],
)
def test_a_mark_column_that_cannot_mark_is_refused_before_writing(
    env: Env, ddl: str | None, problem: str
) -> None:
    env.add_source([ObjectId()])
    env.init_table()  # without the mark column
    if ddl is not None:
        if env.kind == "mysql":
            words = ("DATETIME(6)", "'2000-01-01'", "AS ('2000-01-01') VIRTUAL")
        else:
            words = ("timestamptz", "now()", "GENERATED ALWAYS AS ('2000-01-01') STORED")
        timestamp, now, generated = words
        env.sql(
            "ALTER TABLE cm_cluster_id ADD COLUMN deleted_at "
            + ddl.format(timestamp=timestamp, now=now, generated=generated)
        )
        if env.kind == "mysql":
            env.mysql.commit()
    with pytest.raises(ConfigError, match=problem):
        _soft(env)
    assert env.target_ids() == []


def test_an_orphan_action_that_is_neither_is_a_config_error() -> None:
    for bad in ("mark", "mark:", "erase", "mark:bad name", "mark:a;b"):
        with pytest.raises(ConfigError, match="orphan_action"):
            Job(orphan_action=bad)
    assert Job(orphan_action="mark:gone_at").mark_column == "gone_at"
    assert Job().mark_column is None


def test_the_cli_flag_marks_and_says_so(env: Env) -> None:
    source, orphans = _oids(50), _oids(3)
    _fill(env, source, orphans)
    done = env.idsync("run", "--delete-orphans", "--orphan-action", "mark:deleted_at", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["deleted"], out["orphan_action"]) == (3, "mark:deleted_at")
    assert "Marked orphan cluster_id: " + orphans[0] in done.stderr
    text = env.idsync("check", "--orphan-action", "mark:deleted_at")
    assert text.returncode == 0, text.stdout + text.stderr
    bad = env.idsync("run", "--orphan-action", "remove")
    assert bad.returncode == 2 and "orphan" in bad.stderr


@WATCH_BOTH_TARGETS
def test_a_watcher_marks_deleted_documents_and_unmarks_returning_ones(watch_env: Env) -> None:
    env = watch_env
    env.init_table(SOFT)
    kept = [ObjectId() for _ in range(10)]
    env.add_source(kept)
    coll = env.mongo_db["cluster_trips"]
    job = replace(SOFT, delete_orphans=True)
    with Running(env, fast(), job) as running:
        wait_until(lambda: len(_unmarked(env)) == 10, "the first pass")
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")
        coll.delete_many({"_id": {"$in": kept[:3]}})
        wait_until(lambda: len(_marked(env)) == 3, "the deletes marked")
        coll.insert_one({"_id": kept[0]})
        marker = ObjectId()
        coll.insert_one({"_id": marker})
        wait_until(lambda: str(marker) in _unmarked(env), "the events before the marker")
    assert _marked(env) == sorted(str(oid) for oid in kept[1:3])
    assert len(env.target_ids()) == 11
    assert running.summary is not None and running.summary.restored == 1
    assert running.value("idsync_ids_restored_total") == 1


@BOTH_TARGETS
def test_without_update_privilege_doctor_fails_a_marking_job(env: Env) -> None:
    """PostgreSQL inserts with no UPDATE privilege (MySQL's upsert needs it); marks need it."""
    _fill(env, _oids(5), [])
    with limited_user(env, ["SELECT, INSERT ON cm_cluster_id"]) as url:
        settings = Settings(mongo_uri=env.mongo_uri, mysql_url=url)
        found = {f.check: f for f in diagnose(MIRROR, settings).findings}
    assert found["privileges"].level == "fail" and "UPDATE" in found["privileges"].fix
    assert "DELETE" not in found["privileges"].fix  # a mirror that marks deletes nothing
    _child(env, "CASCADE")
    found = {f.check: f for f in diagnose(MIRROR, env.settings()).findings}
    assert found["foreign-keys"].level == "ok"


def test_init_makes_the_mark_column(env: Env) -> None:
    env.add_source([ObjectId()])
    made = env.idsync("init", "--orphan-action", "mark:gone_at")
    assert made.returncode == 0, made.stderr
    job = Job(orphan_action="mark:gone_at", delete_orphans=True)
    report = sync(job, env.settings(), RunOptions(log_ids=False, record_history=False))
    assert report.status == "ok" and report.inserted == 1
    assert env.sql("SELECT COUNT(*) FROM cm_cluster_id WHERE gone_at IS NULL") == [(1,)]


@WATCH_BOTH_TARGETS
def test_a_marking_watcher_starts_beside_a_cascading_foreign_key(watch_env: Env) -> None:
    """Marks change no key: a cascade is no reason to refuse them, in `watch` as in `run`."""
    env = watch_env
    env.init_table(SOFT)
    kept = [ObjectId() for _ in range(3)]
    env.add_source(kept)
    _child(env, "CASCADE")
    with Running(env, fast(), replace(SOFT, delete_orphans=True)) as running:
        wait_until(lambda: len(_unmarked(env)) == 3, "the first pass")
        _refer(env, [str(kept[0])])
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")
        env.mongo_db["cluster_trips"].delete_one({"_id": kept[0]})
        wait_until(lambda: _marked(env) == [str(kept[0])], "the delete marked")
    assert env.sql("SELECT cluster_ref FROM trip") == [(str(kept[0]),)]
