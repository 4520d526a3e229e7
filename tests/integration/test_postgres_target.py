"""The PostgreSQL target on a real server: ids stored exactly once or rejected alone with the
server's reason, collisions under a nondeterministic collation named, the lock exclusive, the
runs history written and read. (The CLI does not select PostgreSQL yet: the target is driven
directly, through the same protocol run, check and watch use.)"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from bson import Int64, ObjectId
from click.testing import CliRunner

from idsync import RunOptions, sync
from idsync.cli import cli
from idsync.config import Job, Settings
from idsync.errors import ConfigError, LockHeldError, TerminalError
from idsync.postgres.target import PostgresTarget
from idsync.runs import RunRecord
from idsync.urls import PostgresURL
from idsync.watch import WatchOptions, watch
from tests.conftest import BOTH_TARGETS, Env
from tests.conftest import pg_sql as sql
from tests.watch_support import wait_until


def _settings() -> Settings:
    return Settings(mongo_uri="mongodb://127.0.0.1:1/x", mysql_url="mysql://u@127.0.0.1/x")


def target(url: PostgresURL, job: Job | None = None) -> PostgresTarget:
    made = PostgresTarget(_settings(), job or Job(), url)
    made.connect()
    return made


def test_init_makes_an_exact_unique_column_and_leaves_it_alone(database: PostgresURL) -> None:
    with target(database) as pg:
        with pytest.raises(ConfigError, match="idsync init"):
            pg.inspect()
        assert pg.create_table() is True
        assert pg.create_table() is False  # never altered once there
        column = pg.inspect()
    assert (column.data_type, column.collation, column.unique, column.exact) == (
        "text", "C", True, True,
    )  # fmt: skip


def test_every_id_once_and_a_refused_one_alone(database: PostgresURL) -> None:
    sql(database, "CREATE TABLE cm_cluster_id (cluster_id varchar(30) UNIQUE)")
    ids = [f"id-{n:05d}" for n in range(3000)]
    bad = ["x" * 31, "nul\x00inside"]
    with target(database) as pg:
        pg.inspect()
        first = pg.insert_batch([*ids[:1500], *bad, *ids[1500:]])
        again = pg.insert_batch(ids)
        stored = sorted(text for batch in pg.read_id_batches() for text in batch)
    assert first.inserted == 3000 and sorted(first.landed) == sorted(ids)
    assert sorted(text for text, _ in first.rejected) == sorted(bad)
    assert all("refused" in reason for _, reason in first.rejected)
    assert (again.inserted, len(again.landed)) == (0, 3000)  # a rerun inserts nothing
    assert stored == sorted(ids)


def test_a_nondeterministic_collation_names_the_collision(database: PostgresURL) -> None:
    sql(database, "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2',"
                  " deterministic = false)")  # fmt: skip
    sql(database, "CREATE TABLE cm_cluster_id (cluster_id text COLLATE ci UNIQUE)")
    with target(database) as pg:
        column = pg.inspect()
        assert column.exact is False
        assert pg.insert_batch(["abc"]).inserted == 1
        result = pg.insert_batch(["ABC", "other"])
        keys = pg.collation_keys(["x", "X", "y"], column)
        assert pg.stored_equal(["ABC", "zzz"]) == {"ABC": "abc"}
    assert result.inserted == 1 and result.landed == ["other"]
    assert result.rejected == [
        ("ABC", "collides with stored value 'abc' under the column's collation")
    ]
    assert keys[0] == keys[1] != keys[2]


def test_a_char_column_cannot_return_a_trailing_space(database: PostgresURL) -> None:
    sql(database, "CREATE TABLE cm_cluster_id (cluster_id char(24) UNIQUE)")
    with target(database) as pg:
        fit = pg.inspect().fit
    assert fit.problem("ends with a space ") is not None and fit.problem("x" * 24) is None


def test_one_run_per_target_at_a_time(database: PostgresURL) -> None:
    with target(database) as first, target(database) as second:
        first.lock(1.0)
        with pytest.raises(LockHeldError, match="another run holds the lock"):
            second.lock(0.3)
    with target(database) as third:
        third.lock(1.0)  # the lock went with the first session


def test_the_runs_history_is_written_and_read(database: PostgresURL) -> None:
    report = {
        "run_id": "r1", "job": "update-cluster-id", "status": "ok", "exit_code": 0,
        "started_at": datetime.now(UTC).isoformat(), "duration_s": 1.5, "inserted": 3,
    }  # fmt: skip
    failed = {**report, "run_id": "r2", "status": "failed", "exit_code": 1, "error": "boom"}
    with target(database) as pg:
        assert pg.create_owned_tables() == ("idsync_runs", "idsync_state")
        assert pg.create_owned_tables() == ()
        pg.record_run(RunRecord.from_report("run", report))
        pg.record_run(RunRecord.from_report("run", failed))
        recent = pg.recent_runs("update-cluster-id", 10)
        last = pg.last_success("update-cluster-id", ("run", "watch"))
    assert {r.run_id for r in recent} == {"r1", "r2"}
    assert last is not None and (last.run_id, last.inserted) == ("r1", 3)


def test_the_cli_syncs_a_mixed_collection_into_postgresql(env: Env, database: PostgresURL) -> None:
    oids = [ObjectId() for _ in range(300)]
    special = ["a-string-id", "ünïcødé-✓", Int64(2**40), uuid.UUID(int=7), "x" * 200]
    env.add_source([*oids, *special, 7, "7", 1.5, "", True])
    url = f"postgresql://{database.user}:{database.password}@{database.host}:{database.port}/"
    variables = {
        "IDSYNC_MONGO_URI": env.mongo_uri, "IDSYNC_TARGET_URL": url + database.database,
        "IDSYNC_MYSQL_URL": None, "IDSYNC_CONFIG": "",
    }  # fmt: skip

    def idsync(*args: str) -> dict[str, Any]:
        done = CliRunner().invoke(cli, [*args, "--json"], env=variables)
        assert done.exit_code in (0, 4), done.output
        parsed: dict[str, Any] = json.loads(done.stdout)
        return parsed

    assert idsync("init")["created"] is True
    first = idsync("run", "--no-log-ids")
    assert (first["status"], first["inserted"], first["rejected"]) == ("partial", 306, 4)
    assert idsync("run", "--no-log-ids")["inserted"] == 0
    stored = sql(database, "SELECT cluster_id FROM cm_cluster_id")
    expected = [*map(str, oids), *map(str, special), "7"]
    assert sorted(str(v) for (v,) in stored) == sorted(expected)
    checked = idsync("check")
    assert (checked["missing"], checked["orphans"], checked["method"]["target"]["method"]) == (
        0, 0, "buckets",
    )  # fmt: skip
    sql(database, f"DELETE FROM cm_cluster_id WHERE cluster_id = '{oids[7]}'")
    sql(database, "INSERT INTO cm_cluster_id (cluster_id) VALUES ('65a0f1e2d3c4b5a697887766')")
    drift = idsync("check")
    assert (drift["missing_samples"], drift["orphan_samples"]) == (
        [str(oids[7])], ["65a0f1e2d3c4b5a697887766"],
    )  # fmt: skip
    exact = idsync("check", "--exact")
    assert (exact["missing"], exact["orphans"]) == (1, 1)
    assert [run["command"] for run in idsync("status", "--limit", "3")["runs"]] == ["check"] * 3
    findings = {f["check"]: f["level"] for f in idsync("doctor")["findings"]}
    assert findings["postgres"] == "ok" and findings["privileges"] == "ok", findings
    assert findings["state"] == "ok" and findings["history"] == "ok", findings


def test_watch_follows_a_change_stream_into_postgresql_and_resumes(
    watch_env: Env, database: PostgresURL
) -> None:
    url = f"postgresql://{database.user}:{database.password}@{database.host}:{database.port}/"
    settings = Settings(mongo_uri=watch_env.mongo_uri, target_url=url + database.database)
    with target(database) as pg:
        pg.create_table()
    before = [ObjectId() for _ in range(20)]
    watch_env.add_source(before)
    options = WatchOptions(max_batch_wait_s=0.05, stuck_after_s=30.0)
    coll = watch_env.mongo_db["cluster_trips"]

    def count() -> int:
        [(rows,)] = sql(database, "SELECT count(*) FROM cm_cluster_id")
        assert isinstance(rows, int)
        return rows

    def follow(new: list[ObjectId], expected: int) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=watch, args=(Job(), settings, options, stop), daemon=True)
        thread.start()
        try:
            wait_until(lambda: count() >= len(before), "the first full pass")
            coll.insert_many([{"_id": oid} for oid in new])
            wait_until(lambda: count() == expected, "every new id")
        finally:
            stop.set()
            thread.join(60)
        assert not thread.is_alive()

    first = [ObjectId() for _ in range(30)]
    follow(first, 50)
    second = [ObjectId() for _ in range(10)]
    follow(second, 60)  # a second watcher resumes from the stored position
    [(mode, token)] = sql(database, "SELECT mode, resume_token FROM idsync_state")
    assert mode == "change-stream" and token
    stored = sorted(str(v) for (v,) in sql(database, "SELECT cluster_id FROM cm_cluster_id"))
    assert stored == sorted(str(o) for o in before + first + second)


def test_a_hostile_password_works_and_is_never_shown(env: Env, database: PostgresURL) -> None:
    password = "p@ss:w/rd#?x%y'z"
    role = f"hostile_{uuid.uuid4().hex[:8]}"
    sql(database, f"CREATE ROLE {role} LOGIN PASSWORD '{password.replace(chr(39), chr(39) * 2)}'")
    sql(database, f"GRANT ALL ON SCHEMA public TO {role}")
    try:
        env.add_source([ObjectId() for _ in range(10)])
        base = f"@{database.host}:{database.port}/{database.database}"
        good = f"postgresql://{role}:{quote(password, safe='')}{base}"
        bad = f"postgresql://{role}:{quote(password[::-1], safe='')}{base}"
        for url, code in ((good, 0), (bad, 1)):
            done = CliRunner().invoke(
                cli, ["init", "--json"] if code == 0 else ["run", "--json"],
                env={"IDSYNC_MONGO_URI": env.mongo_uri, "IDSYNC_TARGET_URL": url,
                     "IDSYNC_MYSQL_URL": None, "IDSYNC_CONFIG": ""},
            )  # fmt: skip
            assert done.exit_code == code, done.output
            for secret in (password, password[::-1], quote(password, safe="")):
                assert secret[:6] not in done.output and secret not in done.output
        assert "check the user and password" in done.output
    finally:
        sql(database, "DROP TABLE IF EXISTS cm_cluster_id, idsync_runs, idsync_state")
        sql(database, f"DROP OWNED BY {role}")
        sql(database, f"DROP ROLE {role}")


def test_a_dry_run_forecasts_what_a_case_insensitive_column_refuses(
    env: Env, database: PostgresURL
) -> None:
    sql(database, "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2',"
                  " deterministic = false)")  # fmt: skip
    sql(database, "CREATE TABLE cm_cluster_id (cluster_id text COLLATE ci UNIQUE)")
    sql(database, "INSERT INTO cm_cluster_id VALUES ('abc')")
    env.add_source(["ABC", "Xy", "xY", "new"])
    url = f"postgresql://{database.user}:{database.password}@{database.host}:{database.port}/"
    settings = Settings(mongo_uri=env.mongo_uri, target_url=url + database.database)
    dry = sync(Job(), settings, RunOptions(dry_run=True, log_ids=False))
    real = sync(Job(), settings, RunOptions(log_ids=False))
    assert (dry.status, dry.missing, dry.rejected) == ("partial", 2, 2)
    assert (real.status, real.inserted, real.rejected) == ("partial", 2, 2)


@BOTH_TARGETS
def test_a_schema_qualified_table(env: Env, tmp_path: Path) -> None:
    """`schema.table` on PostgreSQL (idsync's own tables beside it; `public` by default, whatever
    the user's search_path); on MySQL the URL names the database: a dotted name is refused."""
    env.add_source([ObjectId() for _ in range(5)])
    config = tmp_path / "idsync.toml"
    config.write_text(
        '[jobs.reports]\ncollection = "cluster_trips"\ntable = "Reports.cluster_ids"\n'
        'column = "cluster_id"\n[jobs.nowhere]\ncollection = "cluster_trips"\n'
        'table = "Nowhere.cluster_ids"\ncolumn = "cluster_id"\n'
    )
    job = ["--config", str(config), "--job", "reports"]
    if env.kind == "mysql":
        done = env.idsync("init", *job)
        assert done.returncode == 2 and "schema" in done.stderr, done.stderr
        return
    env.sql('CREATE SCHEMA "Reports"')
    env.sql("CREATE SCHEMA idsync")  # the default search_path's "$user": never chosen
    env.sql("CREATE TABLE idsync.cm_cluster_id (cluster_id text UNIQUE)")
    assert env.idsync("init", *job).returncode == 0
    assert env.idsync("init").returncode == 0
    assert env.idsync("run", *job).returncode == 0
    assert env.idsync("run").returncode == 0
    assert len(env.sql('SELECT cluster_id FROM "Reports".cluster_ids')) == 5
    assert len(env.sql("SELECT cluster_id FROM public.cm_cluster_id")) == 5
    assert env.sql("SELECT count(*) FROM idsync.cm_cluster_id") == [(0,)]
    assert env.sql('SELECT command FROM "Reports".idsync_runs') == [("run",)]
    assert env.idsync("check", *job).returncode == 0
    missing = env.idsync("run", "--config", str(config), "--job", "nowhere")
    assert missing.returncode == 2 and 'schema "Nowhere"' in missing.stderr, missing.stderr


@pytest.mark.parametrize(
    ("declared", "problem"),
    [("text COLLATE ci", "nondeterministic"), ("varchar(20)", "too short"), ("char(30)", "pads")],
)
def test_doctor_names_what_a_postgresql_column_gets_wrong(
    env: Env, database: PostgresURL, declared: str, problem: str
) -> None:
    sql(database, "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2',"
                  " deterministic = false)")  # fmt: skip
    sql(database, f"CREATE TABLE cm_cluster_id (cluster_id {declared} UNIQUE)")
    url = f"postgresql://{database.user}:{database.password}@{database.host}:{database.port}/"
    done = env.idsync("doctor", "--json", env={"IDSYNC_MYSQL_URL": url + database.database})
    found = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    assert found["column"]["level"] == "warn" and problem in found["column"]["detail"], found
    assert found["column"]["fix"] == 'create the column as text COLLATE "C"'
    assert "local-infile" not in found  # a MySQL setting
    assert "PostgreSQL" in found["clock-skew"]["detail"] and "MySQL" not in done.stdout


def test_a_char_column_is_read_without_its_padding(database: PostgresURL) -> None:
    """char(n) pads what it returns: read as text, an id is itself, once, on every run."""
    sql(database, "CREATE TABLE cm_cluster_id (cluster_id char(30))")  # no unique index
    ids = ["a1", "b22", str(ObjectId())]
    with target(database) as pg:
        column = pg.inspect()
        assert pg.insert_batch(ids).inserted == 3
        stored = sorted(text for batch in pg.read_id_batches() for text in batch)
        assert pg.stored_equal(ids) == {}
        buckets = pg.buckets(column, (1_000_003, 999_983))
        others = sorted(buckets.others())
        shaped = list(buckets.ids(""))
    assert stored == sorted(ids) and others == ["a1", "b22"] and shaped == [ids[2]]


_REWRITE = (
    "CREATE FUNCTION low() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN NEW.cluster_id := lower(NEW.cluster_id); RETURN NEW; END $$"
)


@pytest.mark.parametrize(
    "setup",
    [
        [  # a partition's own trigger: the parent has none
            'CREATE TABLE cm_cluster_id (cluster_id text COLLATE "C" NOT NULL UNIQUE)'
            " PARTITION BY LIST (cluster_id)",
            "CREATE TABLE part PARTITION OF cm_cluster_id DEFAULT",
            _REWRITE,
            "CREATE TRIGGER low BEFORE INSERT ON part FOR EACH ROW EXECUTE FUNCTION low()",
        ],
        [  # an AFTER trigger that rewrites the row it follows
            "CREATE TABLE cm_cluster_id (cluster_id text)",
            "CREATE FUNCTION down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " UPDATE cm_cluster_id SET cluster_id = lower(cluster_id)"
            " WHERE cluster_id = NEW.cluster_id; RETURN NULL; END $$",
            "CREATE TRIGGER down AFTER INSERT ON cm_cluster_id"
            " FOR EACH ROW EXECUTE FUNCTION down()",
        ],
    ],
    ids=["partition-trigger", "after-trigger"],
)
def test_a_rewrite_anywhere_is_caught_and_the_id_rejected(
    database: PostgresURL, setup: list[str]
) -> None:
    for statement in setup:
        sql(database, statement)
    with target(database) as pg:
        pg.inspect()
        result = pg.insert_batch(["Abc1", "def2"])
    assert result.landed == ["def2"] and result.inserted <= 1, result
    assert result.rejected == [
        ("Abc1", "not stored as sent: the server ignored or rewrote the insert")
    ]


def test_a_rule_on_the_table_is_refused_by_the_server_itself(database: PostgresURL) -> None:
    sql(database, "CREATE TABLE cm_cluster_id (cluster_id text)")
    sql(database, "CREATE TABLE elsewhere (cluster_id text)")
    sql(database, "CREATE RULE away AS ON INSERT TO cm_cluster_id DO INSTEAD"
                  " INSERT INTO elsewhere VALUES (lower(NEW.cluster_id))")  # fmt: skip
    with target(database) as pg:
        pg.inspect()
        with pytest.raises(TerminalError, match="rules"):
            pg.insert_batch(["Abc1"])
    assert sql(database, "SELECT count(*) FROM elsewhere") == [(0,)]


def test_rows_a_policy_hides_are_not_taken_as_stored(database: PostgresURL) -> None:
    """Row-level security that lets an insert through but hides the row from reads: the id is
    not proven stored, so it is not reported so (and a rerun's duplicate is not `ok`)."""
    role = f"rls_{uuid.uuid4().hex[:8]}"
    sql(database, f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
    try:
        sql(database, f"GRANT CREATE ON SCHEMA public TO {role}")
        owner = PostgresURL(database.host, database.port, role, "pw", database.database)
        sql(owner, "CREATE TABLE cm_cluster_id (cluster_id text)")
        sql(owner, "ALTER TABLE cm_cluster_id ENABLE ROW LEVEL SECURITY")
        sql(owner, "ALTER TABLE cm_cluster_id FORCE ROW LEVEL SECURITY")
        sql(owner, "CREATE POLICY r ON cm_cluster_id FOR SELECT USING (cluster_id NOT LIKE 'A%')")
        sql(owner, "CREATE POLICY w ON cm_cluster_id FOR INSERT WITH CHECK (true)")
        with target(owner) as pg:
            pg.inspect()
            result = pg.insert_batch(["Abc1", "def2"])
        assert result.landed == ["def2"] and [t for t, _ in result.rejected] == ["Abc1"]
    finally:
        sql(database, f"DROP OWNED BY {role}")
        sql(database, f"DROP ROLE {role}")


def test_a_table_named_like_the_writers_temporary_table(database: PostgresURL) -> None:
    sql(database, 'CREATE TABLE idsync_incoming (x text COLLATE "C" NOT NULL UNIQUE)')
    job = Job(name="t", table="idsync_incoming", column="x")
    with target(database, job) as pg:
        pg.inspect()
        assert pg.insert_batch(["a", "b"]).inserted == 2
        assert pg.insert_batch(["a", "c"]).inserted == 1
    assert sorted(str(x) for (x,) in sql(database, "SELECT x FROM idsync_incoming")) == [
        "a", "b", "c",
    ]  # fmt: skip


def test_ssl_required_of_a_server_without_it_is_a_config_error(
    env: Env, database: PostgresURL
) -> None:
    url = f"postgresql://{database.user}:{database.password}@{database.host}:{database.port}/"
    done = env.idsync(
        "run", "--json", env={"IDSYNC_MYSQL_URL": url + database.database + "?sslmode=require"}
    )
    assert done.returncode == 2, done.stderr
    assert "SSL" in json.loads(done.stdout)["error"] and "retried" not in done.stderr


def test_an_id_with_a_nul_is_rejected_by_run_and_by_check_alike(
    env: Env, database: PostgresURL
) -> None:
    env.add_source([ObjectId(), "nul\x00inside", "plain"])
    url = f"postgresql://{database.user}:{database.password}@{database.host}:{database.port}/"
    variables = {"IDSYNC_MYSQL_URL": url + database.database}
    assert env.idsync("init", env=variables).returncode == 0
    ran = json.loads(env.idsync("run", "--json", env=variables).stdout)
    checked = json.loads(env.idsync("check", "--json", env=variables).stdout)
    assert (ran["inserted"], ran["rejected"]) == (2, 1)
    assert (checked["missing"], checked["rejected"]) == (0, 1), checked


def test_a_collation_from_another_schema(database: PostgresURL) -> None:
    sql(database, "CREATE SCHEMA elsewhere")
    sql(database, "CREATE COLLATION elsewhere.ci (provider = icu, locale = 'und-u-ks-level2',"
                  " deterministic = false)")  # fmt: skip
    sql(database, "CREATE TABLE cm_cluster_id (cluster_id text COLLATE elsewhere.ci UNIQUE)")
    with target(database) as pg:
        column = pg.inspect()
        keys = pg.collation_keys(["x", "X", "y"], column)  # what a dry run asks
        hex_order = pg.sorts_hex_as_bytes(column)
    assert keys[0] == keys[1] != keys[2] and column.exact is False and hex_order is True


def test_a_sql_ascii_database(database: PostgresURL) -> None:
    name = f"{database.database}_ascii"
    sql(database, f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'"
                  " TEMPLATE template0")  # fmt: skip
    try:
        ascii_db = PostgresURL(database.host, database.port, database.user, database.password, name)
        sql(ascii_db, "CREATE TABLE cm_cluster_id (cluster_id text UNIQUE)")
        with target(ascii_db) as pg:
            assert pg.inspect().data_type == "text"
            assert pg.insert_batch(["ünï", "plain"]).inserted == 2
            assert sorted(t for batch in pg.read_id_batches() for t in batch) == ["plain", "ünï"]
    finally:
        sql(database, f"DROP DATABASE {name} WITH (FORCE)")


def test_a_deferrable_unique_constraint(database: PostgresURL) -> None:
    """ON CONFLICT cannot use it: batches go by the copy alone; a conflict found at commit
    fails that batch whole, and nothing of it is kept."""
    sql(database, "CREATE TABLE cm_cluster_id (cluster_id text,"
                  " CONSTRAINT u UNIQUE (cluster_id) DEFERRABLE INITIALLY DEFERRED)")  # fmt: skip
    with target(database) as pg:
        pg.inspect()
        assert pg.insert_batch(["a", "b"]).inserted == 2
        with pytest.raises(TerminalError, match="23505"):
            pg.insert_batch(["b", "c"])
    assert sorted(str(v) for (v,) in sql(database, "SELECT cluster_id FROM cm_cluster_id")) == [
        "a", "b",
    ]  # fmt: skip
