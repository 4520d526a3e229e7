"""Columns at their edges: values the client cannot pre-check, which the server refuses in the
middle of a batch, and columns that do not return a value exactly as it was stored."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from idsync import Job, RunOptions, sync
from idsync.check.checker import CheckOptions, check
from idsync.mysql.target import MySQLTarget
from tests.conftest import Env

pytestmark = pytest.mark.fault

# Long enough that mysqlclient sends a 5,000-id batch as several INSERT statements (64 KiB each).
_IDS = [f"{n:05d}-{'x' * 40}" for n in range(5000)]


@pytest.mark.parametrize("unique", [True, False], ids=["unique", "no-index"])
@pytest.mark.parametrize(
    "column", ["VARCHAR(64) CHARACTER SET latin2", "VARCHAR(64) CHARACTER SET cp1251"]
)
def test_a_late_refused_id_in_a_batch_leaves_every_other_id_stored_once(
    env: Env, column: str, unique: bool
) -> None:
    index = ", UNIQUE (cluster_id)" if unique else ""
    env.sql(f"CREATE TABLE cm_cluster_id (id SERIAL, cluster_id {column}{index})")
    ids = list(_IDS)
    ids[4900] = "bad-\U0001f600"  # in neither latin2 nor cp1251: only the server can tell
    with MySQLTarget(env.settings(), Job()) as target:
        target.connect()
        assert target.inspect().fit.problem(ids[4900]) is None  # the client did not pre-check it
        result = target.insert_batch(ids)
    stored = env.target_ids()
    assert len(stored) == 4999 and set(stored) == set(ids) - {ids[4900]}
    assert result.inserted == 4999
    assert [text for text, _why in result.rejected] == [ids[4900]]
    assert "refused by the server" in result.rejected[0][1]


def test_a_run_counts_what_the_server_stored_when_a_text_column_refuses_an_id(env: Env) -> None:
    # TEXT's limit is in bytes (65,535), the client counts characters: a 30,000-character id of
    # 3-byte characters passes the client's check and is refused by the server.
    env.sql("CREATE TABLE cm_cluster_id (cluster_id TEXT CHARACTER SET utf8mb4)")
    ids = [*_IDS[:3000], "\u4e2d" * 30_000, *_IDS[3000:4000]]
    env.add_source(ids)
    report = sync(Job(), env.settings())
    stored = env.target_ids()
    assert len(stored) == 4000 and set(stored) == set(ids) - {ids[3000]}
    assert (report.inserted, report.rejected, report.exit_code) == (4000, 1, 4)


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        ("CHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin", "CHAR column"),
        ("CHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "CHAR column"),
        ("VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "PAD SPACE"),
        ("VARCHAR(40) CHARACTER SET latin1 COLLATE latin1_swedish_ci", "PAD SPACE"),
    ],
)
@pytest.mark.parametrize("unique", [True, False], ids=["unique", "no-index"])
def test_a_trailing_space_the_column_would_not_return_is_rejected_before_writing(
    env: Env, column: str, reason: str, unique: bool
) -> None:
    index = ", UNIQUE (cluster_id)" if unique else ""
    env.sql(f"CREATE TABLE cm_cluster_id (id SERIAL, cluster_id {column}{index})")
    env.add_source(["x ", "y", "z  ", " w"])
    for _run in range(2):
        report = sync(Job(), env.settings())
        assert sorted(env.target_ids()) == [" w", "y"]  # once each, on every run
        assert report.rejected == 2 and report.exit_code == 4
        assert {r.id for r in report.rejected_samples} == {"x ", "z  "}
        assert all(reason in r.reason for r in report.rejected_samples)
    assert report.missing == 0
    checked = check(Job(), env.settings(), CheckOptions(check_exact=True))
    assert (checked.missing, checked.orphans, checked.rejected) == (0, 0, 2)


def test_a_no_pad_varchar_keeps_trailing_spaces(env: Env) -> None:
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(40) CHARACTER SET utf8mb4"
        " COLLATE utf8mb4_nopad_bin, UNIQUE (cluster_id))"
    )
    env.add_source(["x ", "x"])
    first, second = sync(Job(), env.settings()), sync(Job(), env.settings())
    assert env.target_ids() == ["x", "x "]
    assert (first.inserted, second.inserted, second.missing, second.exit_code) == (2, 0, 0, 0)


@pytest.mark.parametrize("unique", [True, False], ids=["unique", "no-index"])
def test_a_dry_run_predicts_the_collisions_the_run_finds(env: Env, unique: bool) -> None:
    index = ", UNIQUE (cluster_id)" if unique else ""
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) CHARACTER SET utf8mb4"
        f" COLLATE utf8mb4_general_ci NOT NULL{index})"
    )
    env.sql("INSERT INTO cm_cluster_id VALUES ('ABC')")
    env.add_source(["abc", "d1", "d2", "d3", "ABC"])
    dry = sync(Job(), env.settings(), RunOptions(dry_run=True))
    assert env.target_ids() == ["ABC"]  # nothing written
    real = sync(Job(), env.settings())
    # Without a UNIQUE index the server stores 'abc' beside 'ABC': nothing collides.
    expected = ("partial", 4, 1, 3) if unique else ("ok", 0, 0, 4)
    assert (dry.status, dry.exit_code, dry.rejected, dry.missing) == expected
    assert (real.status, real.exit_code, real.rejected, real.inserted) == expected
    assert [(r.id, r.reason) for r in dry.rejected_samples] == [
        (r.id, r.reason) for r in real.rejected_samples
    ]


def test_a_dry_run_predicts_collisions_among_new_ids(env: Env) -> None:
    """Two new ids equal under the collation ('x' and 'X', 'ss' and 'ß'): the run stores the
    first and rejects the other; the dry run says so too, even across batches."""
    env.sql(
        "CREATE TABLE cm_cluster_id (cluster_id VARCHAR(20) CHARACTER SET utf8mb4"
        " COLLATE utf8mb4_general_ci NOT NULL, UNIQUE (cluster_id))"
    )
    env.add_source(["x", "abc", "X", "e", "é", "q"])
    job = replace(Job(), batch_size=2)
    dry = sync(job, env.settings(), RunOptions(dry_run=True))
    real = sync(job, env.settings())
    assert (real.status, real.rejected, real.inserted) == ("partial", 2, 4)
    assert (dry.status, dry.rejected, dry.missing) == ("partial", 2, 4)
    assert sorted(r.id for r in dry.rejected_samples) == sorted(r.id for r in real.rejected_samples)


def test_a_trigger_that_rewrites_ids_is_caught_by_the_run(env: Env) -> None:
    """A BEFORE INSERT trigger may store another text than the one sent: every batch of such a
    table is verified, and what was not stored exactly is rejected, never counted as done."""
    env.init_table()
    env.sql(
        "CREATE TRIGGER mangle BEFORE INSERT ON cm_cluster_id FOR EACH ROW"
        " IF NEW.cluster_id LIKE 'm%%' THEN SET NEW.cluster_id = CONCAT(NEW.cluster_id, 'X');"
        " END IF"
    )
    env.add_source(["a", "m1", "b", "m2", "c"])
    done = env.idsync("run", "--json")
    report = json.loads(done.stdout)
    assert (done.returncode, report["inserted"], report["rejected"]) == (4, 3, 2), done.stderr
    assert sorted(s["id"] for s in report["rejected_samples"]) == ["m1", "m2"]
    assert any("trigger" in warning for warning in report["warnings"])
