"""The two plans of a run on real servers: a set of the target's ids, or both sides merged in
`_id` order. Same answers, the merge in memory of one batch."""

from __future__ import annotations

import contextlib

import pytest
from bson import ObjectId

from idsync import Job, RunOptions, Status, sync
from idsync.check.checker import CheckOptions, check
from idsync.errors import ConfigError, GuardError
from tests.conftest import BOTH_TARGETS, Env

pytestmark = pytest.mark.integration


def _figures(env: Env, plan: str, dry_run: bool = True) -> tuple[object, ...]:
    settings = env.settings(plan=plan, read_batch_size=7)
    report = sync(Job(batch_size=5), settings, RunOptions(dry_run=dry_run, log_ids=False))
    assert report.plan == plan
    return (report.status, report.source_ids, report.present, report.missing, report.orphans,
            report.rejected, sorted(report.orphan_samples))  # fmt: skip


@BOTH_TARGETS
def test_a_merge_finds_what_a_set_finds_and_ends_exact(env: Env) -> None:
    oids = sorted(ObjectId() for _ in range(60))
    # Not ObjectIds: a string, a number, a string spelt like an ObjectId. (A string with the
    # text of one of the ObjectIds, the unit tests' case, FerretDB takes for a duplicate key.)
    spelt = str(ObjectId())
    env.add_source([*oids, "s-1", 5, spelt])
    env.init_table()
    stored = [str(oids[n]) for n in (0, 1, 2, 30, 59)] + ["zzz", "0" * 24, "f" * 24, "5"]
    marks = ", ".join(["(%s)"] * len(stored))
    env.sql(f"INSERT INTO cm_cluster_id (cluster_id) VALUES {marks}", stored)
    assert _figures(env, "merge") == _figures(env, "set")
    report = sync(Job(batch_size=5), env.settings(plan="merge", read_batch_size=7))
    assert report.status is Status.OK
    assert report.plan == "merge" and report.inserted == 57 and report.orphans == 3
    want = {str(o) for o in oids} | {"s-1", "5", spelt, "zzz", "0" * 24, "f" * 24}
    rows = env.target_ids()
    assert sorted(rows) == sorted(want) and len(rows) == len(set(rows))
    again = sync(Job(), env.settings(plan="merge"), RunOptions(log_ids=False))
    assert (again.missing, again.inserted, again.present) == (0, 0, 63)


@BOTH_TARGETS
def test_a_first_sync_and_an_empty_source_by_merge(env: Env) -> None:
    env.init_table()
    empty = sync(Job(), env.settings(plan="merge"), RunOptions(log_ids=False))
    assert empty.status is Status.OK and empty.source_ids == 0
    oids = [ObjectId() for _ in range(3000)]
    env.add_source(oids)
    first = sync(Job(batch_size=500), env.settings(plan="merge"), RunOptions(log_ids=False))
    assert (first.inserted, first.target_ids_before, first.batches) == (3000, 0, 6)
    assert env.target_ids() == sorted(str(o) for o in oids)


def test_no_merge_where_the_column_does_not_order_hex_as_bytes(env: Env) -> None:
    """A case-insensitive collation: "ABC…" equals "abc…" and sorts among the hex ids. A merge
    could miss a row, so it is refused when asked for, and auto reads a set instead."""
    env.add_source([ObjectId() for _ in range(5)])
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) CHARACTER SET utf8mb4"
        " COLLATE utf8mb4_general_ci NOT NULL, UNIQUE KEY (cluster_id))"
    )
    with pytest.raises(ConfigError, match=r"plan merge: .*utf8mb4_general_ci"):
        sync(Job(), env.settings(plan="merge"))
    report = sync(Job(), env.settings(plan="auto"), RunOptions(log_ids=False))
    assert report.plan == "set" and report.inserted == 5


@BOTH_TARGETS
def test_no_merge_without_a_unique_index(env: Env) -> None:
    env.add_source([ObjectId() for _ in range(5)])
    env.sql("CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) NOT NULL)")
    with pytest.raises(ConfigError, match="no UNIQUE index"):
        sync(Job(), env.settings(plan="merge"))
    assert env.target_ids() == []


@BOTH_TARGETS
def test_an_exact_check_by_merge_finds_what_one_by_set_finds(env: Env) -> None:
    oids = sorted(ObjectId() for _ in range(300))
    env.add_source([*oids, "s-1", 7])
    env.init_table()
    assert sync(Job(), env.settings(), RunOptions(log_ids=False)).status is Status.OK
    gone = [str(oids[n]) for n in (0, 150, 299)]
    env.sql(f"DELETE FROM cm_cluster_id WHERE cluster_id IN ({', '.join(['%s'] * 3)})", gone)
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s), (%s)", ("0" * 24, "zz"))
    reports = {}
    for plan in ("set", "merge"):
        settings = env.settings(plan=plan, read_batch_size=17)
        reports[plan] = check(Job(), settings, CheckOptions(check_exact=True))
        assert reports[plan].plan == plan and reports[plan].status is Status.DRIFT
    merged, plain = reports["merge"], reports["set"]
    assert (merged.missing, merged.orphans, merged.source_ids, merged.target_ids) == (
        plain.missing, plain.orphans, plain.source_ids, plain.target_ids,
    )  # fmt: skip
    assert (merged.missing, merged.orphans) == (3, 2)
    assert sorted(merged.missing_samples) == sorted(gone)


@pytest.mark.parametrize(
    "column",
    [
        # MariaDB enforces UNIQUE on a TEXT or a long VARCHAR by a hash: no order to page by.
        "cluster_id TEXT COLLATE utf8mb4_nopad_bin NOT NULL, UNIQUE KEY (cluster_id)",
        "cluster_id VARCHAR(1200) COLLATE utf8mb4_nopad_bin NOT NULL, UNIQUE KEY (cluster_id)",
        # CHAR pads: 'ab\t' sorts before 'ab' in the index, and `> 'ab'` would skip it.
        "cluster_id CHAR(30) COLLATE utf8mb4_nopad_bin NOT NULL, UNIQUE KEY (cluster_id)",
    ],
)
def test_no_merge_where_the_index_does_not_read_in_order(env: Env, column: str) -> None:
    oids = [ObjectId() for _ in range(6)]
    env.add_source([*oids, "ab", "ab\t", "x" * 20])
    env.sql(f"CREATE TABLE cm_cluster_id ({column})")
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES ('ab'), ('ab\t'), ('a'), ('zz')")
    with pytest.raises(ConfigError, match="plan merge: "):
        check(Job(), env.settings(plan="merge"), CheckOptions(check_exact=True))
    checked = check(Job(), env.settings(read_batch_size=1), CheckOptions(check_exact=True))
    assert checked.plan == "set" and (checked.missing, checked.orphans) == (7, 2)


@pytest.mark.parametrize("env", ["postgres"], indirect=True)
def test_a_share_limit_counts_the_table_not_its_estimate(env: Env) -> None:
    """The planner's estimate says 1,000 rows where 100 are left: 10% is 10 ids, not 100."""
    oids = sorted(ObjectId() for _ in range(1000))
    env.add_source(oids[:150])
    env.init_table()
    env.sql("ALTER TABLE cm_cluster_id SET (autovacuum_enabled = false)")
    marks = ", ".join(["(%s)"] * 1000)
    env.sql(f"INSERT INTO cm_cluster_id (cluster_id) VALUES {marks}", [str(o) for o in oids])
    env.sql("ANALYZE cm_cluster_id")
    env.sql("DELETE FROM cm_cluster_id WHERE cluster_id > %s", (str(oids[99]),))
    options = RunOptions(max_inserts_fraction=0.10, log_ids=False)
    for plan in ("set", "merge"):
        with pytest.raises(GuardError, match="more than the limit of 10"):
            sync(Job(), env.settings(plan=plan), options)
    assert len(env.target_ids()) == 100


@pytest.mark.parametrize("env", ["postgres"], indirect=True)
def test_an_invalid_unique_index_is_no_unique_index(env: Env) -> None:
    """What a failed CREATE UNIQUE INDEX CONCURRENTLY leaves: it enforces nothing."""
    env.add_source([ObjectId() for _ in range(3)])
    env.sql('CREATE TABLE cm_cluster_id (cluster_id varchar(64) COLLATE "C" NOT NULL)')
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES ('dup'), ('dup')")
    env.sql("COMMIT")
    with contextlib.suppress(Exception):
        env.sql("CREATE UNIQUE INDEX CONCURRENTLY cm_u ON cm_cluster_id (cluster_id)")
    assert env.sql("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 'cm_u'::regclass")[0][0]
    with pytest.raises(ConfigError, match="no UNIQUE index"):
        sync(Job(), env.settings(plan="merge"))
    checked = check(Job(), env.settings(), CheckOptions(check_exact=True))
    assert checked.duplicate_rows == 1 and checked.plan == "set"


def test_an_out_of_range_budget_names_its_flag(env: Env) -> None:
    done = env.idsync("run", "--memory-budget", "10")
    assert done.returncode == 2
    assert "--memory-budget: memory_budget_mb must be from 64" in done.stderr, done.stderr
