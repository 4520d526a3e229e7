"""Mirror mode: `run --delete-orphans` deletes the rows of ids no document has, and nothing else."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import MySQLdb
import psycopg
import pytest
from bson import Binary, Int64, ObjectId
from bson.binary import UUID_SUBTYPE

from idsync import Job, RunOptions, Settings
from idsync.doctor import diagnose
from idsync.errors import ConfigError, GuardError, IdsyncError
from idsync.run.sync import sync
from idsync.targets import open_target
from idsync.work.worker import WorkOptions, work
from tests.conftest import BOTH_TARGETS, Env, limited_user, mysql_connect


def _oids(count: int) -> list[str]:
    return sorted(str(ObjectId()) for _ in range(count))


def _fill(env: Env, source: list[str], orphans: list[str]) -> None:
    env.add_source([ObjectId(text) for text in source])
    env.init_table()
    rows = [(text,) for text in source + orphans]
    cur = env.mysql.cursor()
    cur.executemany("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", rows)
    if env.kind == "mysql":
        env.mysql.commit()


def _mirror(env: Env, **kw: Any) -> Any:
    options = RunOptions(delete_orphans=True, log_ids=False, record_history=False, **kw)
    return sync(Job(), env.settings(), options)


@BOTH_TARGETS
def test_orphans_are_deleted_and_nothing_else(env: Env) -> None:
    source, orphans = _oids(3000), _oids(25)
    _fill(env, source[:2900], orphans)
    env.add_source([ObjectId(text) for text in source[2900:]])
    report = _mirror(env)
    assert env.target_ids() == source
    assert (report.inserted, report.deleted, report.deleted_rows) == (100, 25, 25)
    assert report.status == "ok" and report.deleted_samples[0] in orphans


@BOTH_TARGETS
def test_a_dry_run_says_what_would_go_and_deletes_nothing(env: Env) -> None:
    source, orphans = _oids(2000), _oids(15)
    _fill(env, source, orphans)
    report = _mirror(env, dry_run=True)
    assert (report.deleted, len(report.deleted_samples)) == (15, 15)
    assert env.target_ids() == sorted(source + orphans)


@BOTH_TARGETS
def test_without_the_flag_orphans_stay(env: Env) -> None:
    source, orphans = _oids(100), _oids(5)
    _fill(env, source, orphans)
    report = sync(Job(), env.settings(), RunOptions(log_ids=False))
    assert report.orphans == 5 and report.deleted == 0 and not report.mirror
    assert env.target_ids() == sorted(source + orphans)


def test_a_job_that_mirrors_deletes_without_the_flag(env: Env) -> None:
    source, orphans = _oids(100), _oids(5)
    _fill(env, source, orphans)
    report = sync(Job(delete_orphans=True), env.settings(), RunOptions(log_ids=False))
    assert report.deleted == 5 and env.target_ids() == source


@BOTH_TARGETS
def test_more_orphans_than_the_default_limit_deletes_nothing(env: Env) -> None:
    source, orphans = _oids(3000), _oids(40)  # 40 > max(10, 1% of 3,040)
    _fill(env, source, orphans)
    with pytest.raises(GuardError, match="40 orphans found, more than the limit of 30"):
        _mirror(env)
    assert env.target_ids() == sorted(source + orphans)
    report = _mirror(env, max_deletes=40)
    assert report.deleted == 40 and env.target_ids() == source


@BOTH_TARGETS
def test_the_guard_as_a_share_and_force(env: Env) -> None:
    source, orphans = _oids(200), _oids(30)
    _fill(env, source, orphans)
    with pytest.raises(GuardError):
        _mirror(env, max_deletes_fraction=0.10)  # 30 > 23
    assert len(env.target_ids()) == 230
    assert _mirror(env, force=True).deleted == 30
    assert env.target_ids() == source


@BOTH_TARGETS
def test_an_empty_source_never_deletes(env: Env) -> None:
    _fill(env, [], _oids(5))
    report = _mirror(env, allow_empty_source=True, force=True)
    assert report.deleted == 0 and len(env.target_ids()) == 5
    assert any("no orphan deleted" in warning for warning in report.warnings)


@BOTH_TARGETS
def test_ids_of_every_type_are_looked_up_before_their_delete(env: Env) -> None:
    """An orphan whose text a document of another type has (an Int64, a UUID, a string) is
    found by the re-verification, whatever type the scan saw."""
    gone = ["42", "-7", str(uuid.uuid4()), "plain-text", str(ObjectId())]
    kept_by_type = [Int64(99), Binary(uuid.UUID(int=5).bytes, UUID_SUBTYPE), "some-string"]
    env.mongo_db.cluster_trips.insert_many([{"_id": value} for value in kept_by_type])
    _fill(env, [], gone)
    report = _mirror(env, force=True)
    assert report.deleted == 5
    assert env.target_ids() == sorted(["99", str(uuid.UUID(int=5)), "some-string"])


class _Resurrect:
    """A Progress that, as the deletes begin, gives the source one orphan back (a document
    inserted after the scan passed its place): that row must stay."""

    def __init__(self, env: Env, text: str) -> None:
        self.env, self.text = env, text

    def start(self, phase: str, total: int | None) -> None:
        if phase == "delete":
            self.env.mongo_db.cluster_trips.insert_one({"_id": ObjectId(self.text)})

    def advance(self, phase: str, count: int) -> None:
        pass


@BOTH_TARGETS
def test_a_document_inserted_during_the_run_keeps_its_row(env: Env) -> None:
    source, orphans = _oids(500), _oids(8)
    _fill(env, source, orphans)
    options = RunOptions(delete_orphans=True, log_ids=False, record_history=False)
    report = sync(Job(), env.settings(), options, progress=_Resurrect(env, orphans[3]))
    assert (report.deleted, report.kept_live) == (7, 1)
    assert env.target_ids() == sorted([*source, orphans[3]])


@BOTH_TARGETS
def test_a_writer_racing_the_deletes_loses_nothing(env: Env) -> None:
    """Another writer brings orphans back (document first, then row, as a watcher does)
    while the run deletes them, batch after batch: every id the source has ends stored."""
    source, orphans = _oids(300), _oids(3000)
    _fill(env, source, orphans)
    back = orphans[::7]
    insert = "INSERT IGNORE INTO" if env.kind == "mysql" else "INSERT INTO"
    conflict = "" if env.kind == "mysql" else " ON CONFLICT DO NOTHING"
    sql = f"{insert} cm_cluster_id (cluster_id) VALUES (%s){conflict}"
    options = RunOptions(delete_orphans=True, log_ids=False, record_history=False, force=True)
    racing(env, back, sql, lambda: sync(Job(batch_size=100), env.settings(), options))
    stored = set(env.target_ids())
    assert set(back) <= stored
    assert set(source) <= stored


def racing(env: Env, back: list[str], store: str | Job, run: Callable[[], object]) -> None:
    """``run`` while another writer brings ``back``: each document first, then its row stored
    again, by the statement ``store`` or by idsync's own writer of the job ``store`` (as a
    watcher does)."""

    def writer() -> None:
        if isinstance(store, Job):
            with open_target(env.settings(), store) as target:
                target.connect()
                target.inspect()
                for text in back:
                    env.mongo_db.cluster_trips.insert_one({"_id": ObjectId(text)})
                    target.insert_batch([text])
            return
        conn: Any
        if env.kind == "mysql":
            conn = mysql_connect(env.mysql_url)
        else:
            conn = psycopg.connect(env.mysql_url, autocommit=True)
        with conn:
            for text in back:
                env.mongo_db.cluster_trips.insert_one({"_id": ObjectId(text)})
                for _attempt in range(10):  # a writer meets deadlocks with the deletes' locks
                    try:
                        conn.cursor().execute(store, (text,))
                        if env.kind == "mysql":
                            conn.commit()
                        break
                    except MySQLdb.OperationalError as exc:
                        if exc.args[0] != 1213:
                            raise

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        run()
    finally:
        thread.join()


def test_the_cli_mirrors_and_reports(env: Env, tmp_path: Path) -> None:
    source, orphans = _oids(100), _oids(3)
    _fill(env, source, orphans)
    dry = env.idsync("run", "--delete-orphans", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["deleted"] == 3
    metrics = tmp_path / "run.prom"
    done = env.idsync("run", "--delete-orphans", "--metrics-file", str(metrics))
    assert done.returncode == 0, done.stderr
    assert 'idsync_ids_deleted_total{idsync_job="update-cluster-id"} 3.0' in metrics.read_text()
    assert "Deleted orphan cluster_id: " + orphans[0] in done.stderr
    assert "orphans deleted 3" in done.stdout
    assert env.target_ids() == source
    bad = env.idsync("run", "--delete-orphans", "--max-deletes", "lots")
    assert bad.returncode == 2 and "--max-deletes" in bad.stderr


def _child(env: Env, action: str, extra: str = "") -> None:
    """A table whose rows reference ids of the target's, ``ON DELETE <action>``."""
    if env.kind == "mysql":
        kind = "VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL"
        env.sql(
            f"CREATE TABLE trip (id INT PRIMARY KEY, cluster_ref {kind}, CONSTRAINT trip_cluster"
            f" FOREIGN KEY (cluster_ref) REFERENCES cm_cluster_id (cluster_id) ON DELETE {action})"
            " ENGINE=InnoDB"
        )
    else:
        env.sql(
            'CREATE TABLE trip (id int PRIMARY KEY, cluster_ref text COLLATE "C" NULL,'
            " CONSTRAINT trip_cluster FOREIGN KEY (cluster_ref) REFERENCES cm_cluster_id"
            f" (cluster_id) ON DELETE {action} {extra})"
        )


def _refer(env: Env, texts: list[str]) -> None:
    cur = env.mysql.cursor()
    cur.executemany("INSERT INTO trip (id, cluster_ref) VALUES (%s, %s)", list(enumerate(texts)))
    if env.kind == "mysql":
        env.mysql.commit()


@BOTH_TARGETS
def test_a_referenced_orphan_is_kept_and_reported(env: Env) -> None:
    source, orphans = _oids(1200), _oids(12)
    _fill(env, source, orphans)
    _child(env, "RESTRICT")
    _refer(env, [orphans[4], orphans[9]])
    report = _mirror(env)
    assert (report.deleted, report.kept_referenced) == (10, 2)
    assert report.status == "partial" and report.exit_code == 4
    assert report.kept_referenced_samples[0].reason.startswith("referenced by ")
    assert "trip" in report.kept_referenced_samples[0].reason
    assert env.target_ids() == sorted([*source, orphans[4], orphans[9]])


@pytest.mark.parametrize("env", ["postgres"], indirect=True)
def test_a_deferred_foreign_key_keeps_its_row_too(env: Env) -> None:
    source, orphans = _oids(50), _oids(6)
    _fill(env, source, orphans)
    _child(env, "NO ACTION", "DEFERRABLE INITIALLY DEFERRED")
    _refer(env, [orphans[0]])
    report = _mirror(env)
    assert (report.deleted, report.kept_referenced) == (5, 1)
    assert env.target_ids() == sorted([*source, orphans[0]])


@pytest.mark.parametrize("action", ["CASCADE", "SET NULL"])
@BOTH_TARGETS
def test_a_cascading_foreign_key_refuses_unless_allowed(env: Env, action: str) -> None:
    source, orphans = _oids(60), _oids(3)
    _fill(env, source, orphans)
    _child(env, action)
    _refer(env, [orphans[1], source[0]])
    with pytest.raises(GuardError, match=f"trip\\(cluster_ref\\) ON DELETE {action}"):
        _mirror(env)
    assert len(env.target_ids()) == 63
    assert len(env.sql("SELECT * FROM trip WHERE cluster_ref IS NOT NULL")) == 2
    report = _mirror(env, allow_cascade=True)
    assert report.deleted == 3 and env.target_ids() == source
    assert env.sql("SELECT cluster_ref FROM trip WHERE cluster_ref IS NOT NULL") == [(source[0],)]


@BOTH_TARGETS
def test_doctor_lists_the_foreign_keys_and_warns_a_mirror_of_a_cascade(env: Env) -> None:
    _fill(env, _oids(3), [])
    listed = {f.check: f for f in diagnose(Job(), env.settings()).findings}
    assert listed["foreign-keys"].detail.startswith("none reference cm_cluster_id")
    _child(env, "CASCADE")
    done = env.idsync("doctor", "--json")
    found = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    assert found["foreign-keys"]["level"] == "ok"
    assert "trip(cluster_ref) ON DELETE CASCADE" in found["foreign-keys"]["detail"]
    mirrored = {f.check: f for f in diagnose(Job(delete_orphans=True), env.settings()).findings}
    assert mirrored["foreign-keys"].level == "warn"


@BOTH_TARGETS
def test_history_keeps_the_deletes_and_an_older_table_gains_the_column(env: Env) -> None:
    source, orphans = _oids(40), _oids(4)
    _fill(env, source, orphans[:2])
    env.create_owned()
    env.sql("ALTER TABLE idsync_runs DROP COLUMN deleted")  # as an older version made it
    options = RunOptions(delete_orphans=True, log_ids=False)
    assert sync(Job(), env.settings(), options).deleted == 2  # its history row still written
    env.create_owned()  # `idsync init` adds the column
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", (orphans[2],))
    if env.kind == "mysql":
        env.mysql.commit()
    sync(Job(), env.settings(), options)
    sync(Job(), env.settings(), RunOptions(log_ids=False))
    status = env.idsync("status", "--json", "--limit", "5")
    assert status.returncode == 0, status.stderr
    runs = json.loads(status.stdout)["runs"]
    assert [run.get("deleted") for run in runs] == [None, 1, None]


@BOTH_TARGETS
def test_without_delete_privilege_doctor_fails_a_mirroring_job_and_the_run_deletes_nothing(
    env: Env,
) -> None:
    source, orphans = _oids(30), _oids(2)
    _fill(env, source, orphans)
    with limited_user(env, ["SELECT, INSERT, UPDATE ON cm_cluster_id"]) as url:
        settings = Settings(mongo_uri=env.mongo_uri, mysql_url=url)
        plain = {f.check: f for f in diagnose(Job(), settings).findings}
        assert plain["privileges"].level == "ok"
        found = {f.check: f for f in diagnose(Job(delete_orphans=True), settings).findings}
        assert found["privileges"].level == "fail" and "DELETE" in found["privileges"].fix
        options = RunOptions(delete_orphans=True, log_ids=False, record_history=False)
        with pytest.raises(IdsyncError):
            sync(Job(), settings, options)
    assert env.target_ids() == sorted(source + orphans)


def test_a_worker_of_a_mirroring_job_says_it_keeps_orphans(env: Env) -> None:
    source, orphans = _oids(50), _oids(2)
    _fill(env, source, orphans)
    report = work(Job(delete_orphans=True), env.settings(), WorkOptions(ranges=2))
    assert report.status == "ok"
    assert any("only inserts" in warning for warning in report.warnings)
    assert env.target_ids() == sorted(source + orphans)


@BOTH_TARGETS
@pytest.mark.parametrize("unique", [False, True], ids=["no-unique-index", "case-insensitive"])
def test_a_column_where_one_text_may_delete_another_refuses_before_writing(
    env: Env, unique: bool
) -> None:
    """Without a UNIQUE index, or under a collation that takes `abc` for `ABC` (or `abc `), a
    delete of one text may take a live row with it: refused, exit 2, nothing written."""
    if env.kind == "mysql":
        kind = "VARCHAR(64) CHARACTER SET utf8mb4 COLLATE " + (
            "utf8mb4_general_ci" if unique else "utf8mb4_nopad_bin"
        )
    else:
        env.sql(
            "CREATE COLLATION IF NOT EXISTS ci (provider = icu, locale = 'und-u-ks-level2',"
            " deterministic = false)"
        )
        kind = "text COLLATE " + ("ci" if unique else '"C"')
    env.sql(f"CREATE TABLE cm_cluster_id (cluster_id {kind} NOT NULL{' UNIQUE' if unique else ''})")
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES ('abc-orphan')")
    if env.kind == "mysql":
        env.mysql.commit()
    env.add_source(["ABC-orphan", "new-id"])
    with pytest.raises(ConfigError, match="deleting orphans from cm_cluster_id needs"):
        _mirror(env)
    assert env.target_ids() == ["abc-orphan"]


@pytest.mark.parametrize("env", ["postgres"], indirect=True)
def test_a_delete_trigger_refuses_and_a_row_it_keeps_is_reported(env: Env) -> None:
    """A trigger on delete may do anything elsewhere: refused like a cascade; allowed, a row
    it keeps (a soft delete that returns NULL) is kept and said, not counted as deleted."""
    source, orphans = _oids(40), _oids(3)
    _fill(env, source, orphans)
    env.sql(
        "CREATE FUNCTION keep_it() RETURNS trigger LANGUAGE plpgsql AS"
        f" $$ BEGIN IF OLD.cluster_id = '{orphans[1]}' THEN RETURN NULL; END IF; RETURN OLD;"
        " END $$"
    )
    env.sql(
        "CREATE TRIGGER soft BEFORE DELETE ON cm_cluster_id FOR EACH ROW EXECUTE FUNCTION keep_it()"
    )
    with pytest.raises(GuardError, match="trigger soft ON DELETE"):
        _mirror(env)
    report = _mirror(env, allow_cascade=True)
    assert (report.deleted, report.kept_referenced, report.exit_code) == (2, 1, 4)
    assert report.kept_referenced_samples[0].reason.startswith("not deleted by the server")
    assert env.target_ids() == sorted([*source, orphans[1]])


@pytest.mark.parametrize("env", ["mysql"], indirect=True)
def test_a_trigger_that_deletes_elsewhere_refuses(env: Env) -> None:
    source, orphans = _oids(40), _oids(3)
    _fill(env, source, orphans)
    _child(env, "RESTRICT")
    env.sql(
        "CREATE TRIGGER wipe_trips AFTER DELETE ON cm_cluster_id FOR EACH ROW"
        " DELETE FROM trip WHERE cluster_ref IS NULL"
    )
    with pytest.raises(GuardError, match="trigger wipe_trips ON DELETE"):
        _mirror(env)
    assert len(env.target_ids()) == 43


@pytest.mark.parametrize("env", ["mysql"], indirect=True)
def test_bytes_that_are_not_utf8_are_left_and_said(env: Env) -> None:
    source = _oids(20)
    env.add_source([ObjectId(text) for text in source])
    env.sql("CREATE TABLE cm_cluster_id (cluster_id VARBINARY(64) NOT NULL UNIQUE)")
    cur = env.mysql.cursor()
    cur.executemany("INSERT INTO cm_cluster_id VALUES (%s)", [(t.encode(),) for t in source])
    cur.execute("INSERT INTO cm_cluster_id VALUES (%s)", (b"\xff\xfe-orphan",))
    cur.execute("INSERT INTO cm_cluster_id VALUES (%s)", (b"plain-orphan",))
    env.mysql.commit()
    report = _mirror(env)
    assert report.deleted == 1 and any("not UTF-8" in w for w in report.warnings)
    assert len(env.sql("SELECT * FROM cm_cluster_id")) == 21


def test_a_whole_double_beyond_int64_keeps_its_row(env: Env) -> None:
    env.mongo_db.cluster_trips.insert_many([{"_id": 1e19}, {"_id": "x"}])
    _fill(env, [], ["10000000000000000000", "12"])
    report = _mirror(env, force=True)
    assert (report.deleted, report.kept_live) == (1, 1)
    assert env.target_ids() == ["10000000000000000000", "x"]


def test_workers_of_a_mirroring_run_are_one_pass(env: Env) -> None:
    source, orphans = _oids(300), _oids(3)
    _fill(env, source, orphans)
    options = RunOptions(delete_orphans=True, log_ids=False, record_history=False)
    report = sync(Job(), env.settings(workers=4, range_reads="always"), options)
    assert report.deleted == 3 and "mirror mode" in (report.workers_reason or "")
    assert env.target_ids() == source


@pytest.mark.parametrize("env", ["postgres"], indirect=True)
@pytest.mark.parametrize("kind", ["trigger", "foreign-key"])
def test_a_partition_s_trigger_or_cascade_refuses_as_the_table_s_would(env: Env, kind: str) -> None:
    """A delete from a partitioned table reaches its partitions: their delete triggers and the
    foreign keys that reference them are the table's."""
    env.sql(
        'CREATE TABLE cm_cluster_id (cluster_id text COLLATE "C" NOT NULL UNIQUE)'
        " PARTITION BY HASH (cluster_id)"
    )
    for n in range(2):
        env.sql(f"CREATE TABLE p{n} PARTITION OF cm_cluster_id FOR VALUES WITH"
                f" (MODULUS 2, REMAINDER {n})")  # fmt: skip
    if kind == "trigger":
        env.sql("CREATE FUNCTION noted() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RETURN OLD; END $$")  # fmt: skip
        env.sql("CREATE TRIGGER noted AFTER DELETE ON p1 FOR EACH ROW EXECUTE FUNCTION noted()")
    else:
        env.sql('CREATE TABLE trip (cluster_ref text COLLATE "C"'
                " REFERENCES p0 (cluster_id) ON DELETE CASCADE)")  # fmt: skip
    source, orphans = _oids(30), _oids(3)
    env.add_source([ObjectId(text) for text in source])
    env.mysql.cursor().executemany(
        "INSERT INTO cm_cluster_id VALUES (%s)", [(text,) for text in source + orphans]
    )
    with pytest.raises(GuardError, match="noted ON DELETE" if kind == "trigger" else "CASCADE"):
        _mirror(env)
    assert len(env.target_ids()) == 33


@pytest.mark.parametrize("env", ["postgres"], indirect=True)
def test_a_deferrable_unique_constraint_is_not_taken_for_a_unique_index(env: Env) -> None:
    env.sql(
        'CREATE TABLE cm_cluster_id (cluster_id text COLLATE "C" NOT NULL'
        " UNIQUE DEFERRABLE INITIALLY DEFERRED)"
    )
    env.add_source([ObjectId()])
    with pytest.raises(ConfigError, match="needs a UNIQUE index on cluster_id"):
        _mirror(env)
    assert env.target_ids() == []
