"""Mirror mode and soft delete at their edges: flapping documents, ids no double can hold,
domains, triggers on updates, privileges, lost replies, the server's default isolation."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
from bson import ObjectId

from idsync import Job, RunOptions
from idsync.doctor import diagnose
from idsync.errors import ConfigError, GuardError, TransientError
from idsync.postgres.target import PostgresTarget
from idsync.run.sync import sync
from idsync.targets import open_target
from idsync.urls import PostgresURL
from tests.conftest import BOTH_TARGETS, Env, mysql_connect
from tests.fault.conftest import wait_for

SOFT = Job(orphan_action="mark:deleted_at")


def _oids(n: int) -> list[str]:
    return sorted(str(ObjectId()) for _ in range(n))


def _insert(env: Env, texts: list[str], marked: bool = False) -> None:
    cur = env.mysql.cursor()
    now = "CURRENT_TIMESTAMP" if marked else "NULL"
    cur.executemany(
        f"INSERT INTO cm_cluster_id (cluster_id, deleted_at) VALUES (%s, {now})",
        [(t,) for t in texts],
    )
    if env.kind == "mysql":
        env.mysql.commit()


def _insert_plain(env: Env, texts: list[str]) -> None:
    cur = env.mysql.cursor()
    cur.executemany("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", [(t,) for t in texts])
    if env.kind == "mysql":
        env.mysql.commit()


def _marked(env: Env) -> list[str]:
    rows = env.sql("SELECT cluster_id FROM cm_cluster_id WHERE deleted_at IS NOT NULL")
    return sorted(row[0] for row in rows)


@BOTH_TARGETS
def test_restored_ids_of_a_batch_whose_reply_was_lost_are_settled_as_inserted(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every missing id was a marked row (it came back): the batch unmarks them all, its
    commit reply is lost, the next pass settles it: nothing left marked, nothing twice."""
    back = _oids(300)
    env.add_source([ObjectId(t) for t in back])
    env.init_table(SOFT)
    _insert(env, back, marked=True)
    target_class = type(open_target(env.settings(), SOFT))
    real = target_class.insert_batch
    lost: list[int] = []

    def committed_then_reply_lost(self: Any, texts: Any, checkpoint: Any = None) -> Any:
        result = real(self, texts, checkpoint)
        if not lost:
            lost.append(result.restored)
            raise TransientError("the server's reply to COMMIT was lost (the link reset)")
        return result

    monkeypatch.setattr(target_class, "insert_batch", committed_then_reply_lost)
    options = RunOptions(log_ids=False, record_history=False)
    report = sync(SOFT, env.settings(retries=2, retry_backoff_s=0.0), options)
    assert lost == [300] and report.retried and report.status == "ok"
    assert _marked(env) == []
    # The next pass finds them stored, and cannot tell a restored row from a new one: counted
    # as inserted (README, "Soft delete").
    assert (report.inserted, report.restored) == (300, 0)


@pytest.mark.parametrize("env", ["postgres"], indirect=True)
def test_a_mark_column_whose_domain_defaults_to_now_is_refused(env: Env) -> None:
    """A domain carries its own default (and NOT NULL), which the column's catalog row does not
    show: it counts as the column's."""
    env.sql("CREATE DOMAIN marked_at AS timestamptz DEFAULT now()")
    env.sql(
        'CREATE TABLE cm_cluster_id (cluster_id varchar(64) COLLATE "C" NOT NULL UNIQUE,'
        " deleted_at marked_at NULL)"
    )
    fresh = _oids(50)
    env.add_source([ObjectId(t) for t in fresh])
    with pytest.raises(ConfigError, match="default to NULL"):
        sync(SOFT, env.settings(), RunOptions(log_ids=False, record_history=False))
    env.sql("CREATE DOMAIN never_null AS timestamptz NOT NULL")
    env.sql("ALTER TABLE cm_cluster_id DROP COLUMN deleted_at")
    env.sql("ALTER TABLE cm_cluster_id ADD COLUMN deleted_at never_null NULL")
    with pytest.raises(ConfigError, match="allow NULL"):
        sync(SOFT, env.settings(), RunOptions(log_ids=False, record_history=False))


@BOTH_TARGETS
@pytest.mark.parametrize("action", ["delete", "mark:deleted_at"])
def test_a_flapping_document_does_not_keep_its_whole_batch_as_live(
    env: Env, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One document is deleted and inserted again, over and over, by another client while the
    run deletes a batch of 50 orphans: it is kept, live; the 49 others go."""
    from idsync.mongo.source import MongoSource

    job = Job(batch_size=50, orphan_action=action)
    source, orphans = _oids(200), _oids(50)
    env.add_source([ObjectId(t) for t in source])
    env.init_table(job)
    cur = env.mysql.cursor()
    cur.executemany("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)",
                    [(t,) for t in source + orphans])  # fmt: skip
    if env.kind == "mysql":
        env.mysql.commit()
    flapper = orphans[7]
    coll = env.mongo_db["cluster_trips"]
    real = MongoSource.live
    calls: list[int] = []

    def live_with_a_flapping_writer(self: Any, texts: Any) -> Any:
        calls.append(len(texts))
        if flapper in texts:
            if len(calls) % 2:  # a first look: the document is gone
                coll.delete_one({"_id": ObjectId(flapper)})
            else:  # a second look: it is back
                coll.insert_one({"_id": ObjectId(flapper), "trips": []})
        return real(self, texts)

    monkeypatch.setattr(MongoSource, "live", live_with_a_flapping_writer)
    options = RunOptions(delete_orphans=True, force=True, log_ids=False, record_history=False)
    report = sync(job, env.settings(), options)
    monkeypatch.setattr(MongoSource, "live", real)
    truly_live = set(source) | ({flapper} if coll.find_one({"_id": ObjectId(flapper)}) else set())
    left = (
        set(env.target_ids()) if action == "delete" else set(env.target_ids()) - set(_marked(env))
    )
    assert report.kept_live <= 1, (report.kept_live, report.deleted, report.status)
    assert left <= truly_live | {flapper}, len(left - truly_live)
    assert report.deleted == 49 and set(source) <= left


@pytest.mark.parametrize("env", ["postgres"], indirect=True)
def test_doctor_asks_a_mirroring_job_for_what_its_lock_needs_on_postgres(env: Env) -> None:
    """A delete-mode mirror locks the orphans' rows (SELECT … FOR UPDATE), which PostgreSQL
    allows only with UPDATE on the table: doctor asks for it, as the run needs it."""
    from idsync import Settings

    source, orphans = _oids(30), _oids(2)
    env.add_source([ObjectId(t) for t in source])
    env.init_table()
    cur = env.mysql.cursor()
    cur.executemany("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)",
                    [(t,) for t in source[:20] + orphans])  # fmt: skip
    from tests.conftest import limited_user

    with limited_user(env, ["SELECT, INSERT, DELETE ON cm_cluster_id"]) as url:
        settings = Settings(mongo_uri=env.mongo_uri, mysql_url=url)
        found = {f.check: f for f in diagnose(Job(delete_orphans=True), settings).findings}
        options = RunOptions(delete_orphans=True, log_ids=False, record_history=False)
        with pytest.raises(Exception, match="permission denied"):
            sync(Job(), settings, options)  # the run: denied at its first delete batch
        # ...after its inserts: 10 ids inserted, then the failure
        assert len(env.target_ids()) == 32
        assert found["privileges"].level == "fail", found["privileges"]
        assert "UPDATE" in found["privileges"].fix


@pytest.mark.parametrize("env", ["mysql", "postgres"], indirect=True)
def test_a_marking_mirror_refuses_an_update_trigger_that_deletes_elsewhere(env: Env) -> None:
    """A trigger on the table's deletes refuses a deleting mirror ("it may change anything");
    a marking mirror UPDATEs, so a trigger on updates refuses it, unless --allow-cascade."""
    source, orphans = _oids(30), _oids(2)
    env.add_source([ObjectId(t) for t in source])
    env.init_table(SOFT)
    _insert(env, source + orphans)
    env.sql("CREATE TABLE trip (cluster_ref varchar(64))")
    env.sql("INSERT INTO trip VALUES (%s)", (orphans[0],))
    if env.kind == "mysql":
        env.sql("CREATE TRIGGER wipe AFTER UPDATE ON cm_cluster_id FOR EACH ROW"
                " DELETE FROM trip WHERE cluster_ref = OLD.cluster_id")  # fmt: skip
        env.mysql.commit()
    else:
        env.sql(
            "CREATE FUNCTION wipe() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN DELETE FROM trip WHERE cluster_ref = OLD.cluster_id; RETURN NULL; END $$"
        )
        env.sql("CREATE TRIGGER wipe AFTER UPDATE ON cm_cluster_id FOR EACH ROW"
                " EXECUTE FUNCTION wipe()")  # fmt: skip
    options = RunOptions(delete_orphans=True, log_ids=False, record_history=False)
    with pytest.raises(GuardError, match="trigger"):
        sync(SOFT, env.settings(), options)
    assert env.sql("SELECT cluster_ref FROM trip") == [(orphans[0],)]
    assert _marked(env) == []
    found = {f.check: f for f in diagnose(replace(SOFT, delete_orphans=True), env.settings())
             .findings}  # fmt: skip
    assert found["foreign-keys"].level == "warn" and "ON UPDATE" in found["foreign-keys"].detail
    report = sync(SOFT, env.settings(), replace(options, allow_cascade=True))
    assert report.deleted == 2 and env.sql("SELECT cluster_ref FROM trip") == []


@BOTH_TARGETS
@pytest.mark.parametrize("digits", [400, 5000])
def test_a_long_all_digit_orphan_is_marked_not_a_crash(env: Env, digits: int) -> None:
    """A string `_id` of digits too many for a double (or for Python's int() of a string): its
    lookup is of the string alone, and the orphan is marked."""
    if env.kind == "mysql":
        env.sql(
            "CREATE TABLE cm_cluster_id (cluster_id varchar(6000) CHARACTER SET ascii"
            " COLLATE ascii_bin NOT NULL, deleted_at DATETIME(6) NULL, UNIQUE (cluster_id))"
        )
        env.sql("ALTER TABLE cm_cluster_id MODIFY cluster_id varchar(6000) CHARACTER SET utf8mb4"
                " COLLATE utf8mb4_nopad_bin NOT NULL")  # fmt: skip
    else:
        env.sql('CREATE TABLE cm_cluster_id (cluster_id text COLLATE "C" NOT NULL UNIQUE,'
                " deleted_at timestamptz NULL)")  # fmt: skip
    source = _oids(20)
    env.add_source([ObjectId(t) for t in source])
    orphan = "9" * digits
    _insert(env, [*source, orphan])
    done = env.idsync("run", "--delete-orphans", "--force", "--orphan-action",
                      "mark:deleted_at", "--no-log-ids", "--json")  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-600:]
    assert done.returncode == 0, done.stderr[-600:]
    assert _marked(env) == [orphan]


@pytest.mark.parametrize("env", ["postgres"], indirect=True)
def test_a_server_whose_default_isolation_is_repeatable_read_gets_read_committed(
    env: Env,
) -> None:
    """The exact inserts and deletes reason statement by statement: whatever the database's
    default, idsync's sessions read committed, as on MySQL."""
    [(database,)] = env.sql("SELECT current_database()")
    env.sql(f"ALTER DATABASE {database} SET default_transaction_isolation = 'repeatable read'")
    try:
        env.init_table()
        with PostgresTarget(env.settings(), Job(), PostgresURL.parse(env.mysql_url)) as target:
            target.connect()
            assert target.fetch("SHOW transaction_isolation") == [("read committed",)]
    finally:
        env.sql(f"ALTER DATABASE {database} RESET default_transaction_isolation")


@pytest.mark.parametrize("env", ["postgres"], indirect=True)
def test_a_column_s_default_null_over_its_domain_s_and_a_domain_of_a_domain_can_mark(
    env: Env,
) -> None:
    """A column's own DEFAULT NULL overrides its domain's (PostgreSQL stores it as NULL cast to
    the type); a domain over a domain over timestamptz is a date and time: both can mark."""
    env.sql("CREATE DOMAIN stamped AS timestamptz DEFAULT now()")
    env.sql("CREATE DOMAIN plain_stamp AS timestamptz")
    env.sql("CREATE DOMAIN mark_stamp AS plain_stamp")
    source = _oids(30)
    env.add_source([ObjectId(t) for t in source])
    for kind in ("stamped NULL DEFAULT NULL", "mark_stamp NULL"):
        env.sql("DROP TABLE IF EXISTS cm_cluster_id")
        env.sql(
            'CREATE TABLE cm_cluster_id (cluster_id varchar(64) COLLATE "C" NOT NULL UNIQUE,'
            f" deleted_at {kind})"
        )
        report = sync(SOFT, env.settings(), RunOptions(log_ids=False, record_history=False))
        assert report.status == "ok" and report.inserted == 30, kind
        assert env.sql("SELECT count(*) FROM cm_cluster_id WHERE deleted_at IS NULL") == [(30,)]


@pytest.mark.parametrize("env", ["mysql"], indirect=True)
def test_a_delete_batch_chosen_as_a_deadlock_s_victim_is_sent_again(env: Env) -> None:
    """Another transaction, heavier than the batch, locks an orphan's row, then asks for one the
    batch holds: InnoDB rolls the batch back (1213), and it is sent again, not the pass."""
    source, orphans = _oids(20), _oids(50)
    env.add_source([ObjectId(t) for t in source])
    env.init_table()
    _insert_plain(env, source + orphans)
    other = mysql_connect(env.mysql_url)
    cur = other.cursor()
    cur.execute("CREATE TABLE ballast (n INT)")
    cur.execute("BEGIN")
    cur.execute("INSERT INTO ballast VALUES " + ", ".join(f"({n})" for n in range(5000)))
    cur.execute("SELECT cluster_id FROM cm_cluster_id WHERE cluster_id = %s FOR UPDATE",
                (orphans[-1],))  # fmt: skip
    options = RunOptions(delete_orphans=True, force=True, log_ids=False, record_history=False)
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(sync(Job(), env.settings(retries=0),
                                                               options)))  # fmt: skip
    thread.start()
    try:
        waiting = (  # the batch's locking read, waiting (a user sees its own sessions)
            "SELECT 1 FROM information_schema.PROCESSLIST WHERE DB = DATABASE()"
            " AND ID <> CONNECTION_ID() AND INFO LIKE '%%FOR UPDATE'"
        )
        wait_for(lambda: not thread.is_alive() or bool(env.sql(waiting)), "the batch to wait")
        cur.execute(
            "SELECT cluster_id FROM cm_cluster_id WHERE cluster_id = %s FOR UPDATE", (orphans[0],)
        )  # the batch holds it: a deadlock, the batch its victim
        other.rollback()
    finally:
        thread.join(timeout=120)
        other.close()
    assert done and done[0].status == "ok" and done[0].deleted == 50, done
    assert env.target_ids() == source
