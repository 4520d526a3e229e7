"""`idsync check` against real servers: every planted difference is found, nothing is written.

Each test runs on FerretDB (whose side is read whole) and on mongo-java-server (counted per
bucket on the server) unless it is about one of them.
"""

from __future__ import annotations

import json
import random
import struct
import uuid
from collections.abc import Sequence

import pytest
from bson import Int64, ObjectId

from idsync import Job, Settings, sync
from idsync.check.checker import CheckOptions, check
from idsync.check.report import CheckReport, CheckStatus, Method
from idsync.cli.check import check_after, exit_code_after
from idsync.errors import TransientError
from tests.conftest import Env

pytestmark = pytest.mark.integration

BASE = 1_700_000_000


def spread_ids(n: int, seed: int = 1, every_s: int = 7) -> list[ObjectId]:
    """ObjectIds made over time (one every ``every_s`` seconds), as an application makes them."""
    rng = random.Random(seed)
    return [ObjectId(struct.pack(">I", BASE + i * every_s) + rng.randbytes(8)) for i in range(n)]


def synced(env: Env, ids: Sequence[object], job: Job | None = None) -> None:
    env.add_source(ids)
    env.init_table(job)
    sync(job or Job(), env.settings())


def drop_row(env: Env, text: str) -> None:
    env.sql("DELETE FROM cm_cluster_id WHERE cluster_id = %s", (text,))


def add_row(env: Env, text: str) -> None:
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", (text,))


def fast_and_exact(env: Env) -> tuple[CheckReport, CheckReport]:
    return check(Job(), env.settings()), check(Job(), env.settings(), CheckOptions(True))


def test_in_sync_reads_no_objectid(source_env: Env) -> None:
    synced(source_env, [*spread_ids(3000), "a-string-id", 42])
    rows_before = source_env.target_ids()
    fast, exact = fast_and_exact(source_env)
    for report in (fast, exact):
        assert (report.status, report.exit_code) == (CheckStatus.OK, 0)
        assert (report.missing, report.orphans, report.rejected) == (0, 0, 0)
        assert (report.source_ids, report.target_ids) == (3002, 3002)
    assert fast.method["target"].method is Method.BUCKETS
    assert fast.buckets_compared > 1 and fast.buckets_differing == 0
    assert fast.ids_read_target == 2  # the two ids that are not ObjectIds
    assert exact.ids_read_target == 3002
    assert source_env.target_ids() == rows_before  # nothing written


def test_missing_ids_are_found_and_named(source_env: Env) -> None:
    ids = spread_ids(3000)
    synced(source_env, ids)
    gone = [str(ids[5]), str(ids[1500]), str(ids[2999])]
    for text in gone:
        drop_row(source_env, text)
    for report in fast_and_exact(source_env):
        assert (report.status, report.exit_code) == (CheckStatus.DRIFT, 4)
        assert report.missing == 3 and sorted(report.missing_samples) == sorted(gone)
        assert (report.orphans, report.rejected) == (0, 0)


def test_orphans_are_found_and_kept(source_env: Env) -> None:
    synced(source_env, spread_ids(3000))
    planted = [str(spread_ids(1, seed=99)[0]), "not-in-mongodb", str(ObjectId())]
    for text in planted:
        add_row(source_env, text)
    for report in fast_and_exact(source_env):
        assert report.status is CheckStatus.DRIFT
        assert report.orphans == 3 and sorted(report.orphan_samples) == sorted(planted)
        assert report.missing == 0
    assert set(planted) <= set(source_env.target_ids())  # reported, never deleted


def test_rejected_ids_unencodable_and_too_long(source_env: Env) -> None:
    job = Job(table="short_ids", column="cid")
    source_env.sql("CREATE TABLE short_ids (cid VARCHAR(30) NOT NULL, UNIQUE (cid))")
    too_long = "x" * 31
    source_env.add_source([*spread_ids(500), 1.5, True, "", too_long, 7, "7"])
    sync(job, source_env.settings())
    for options in (CheckOptions(), CheckOptions(check_exact=True)):
        report = check(job, source_env.settings(), options)
        assert report.status is CheckStatus.DRIFT and report.exit_code == 4
        assert (report.missing, report.orphans, report.rejected) == (0, 0, 5)
        assert {r.reason for r in report.rejected_samples} == {
            "unsupported type: double",
            "unsupported type: bool",
            "empty string",
            "too long for column: 31 characters > 30",
            "another source id has the same text (e.g. int 5 and '5')",
        }


def test_mixed_id_types_each_found_missing(source_env: Env) -> None:
    uid = uuid.uuid4()
    hex_string = "0123456789abcdef01234567"  # a string, not an ObjectId, in MongoDB
    oids = spread_ids(2000)
    synced(source_env, [*oids, "trip-A", "ünïcødé-☃", 42, Int64(2**40), -7, uid, hex_string])
    fast, exact = fast_and_exact(source_env)
    assert fast.status is CheckStatus.OK and exact.status is CheckStatus.OK
    gone = [str(oids[10]), "trip-A", "ünïcødé-☃", str(2**40), str(uid), hex_string]
    for text in gone:
        drop_row(source_env, text)
    add_row(source_env, "ABCDEF0123456789ABCDEF01")  # uppercase: not an ObjectId's text
    for report in fast_and_exact(source_env):
        assert report.status is CheckStatus.DRIFT
        assert sorted(report.missing_samples) == sorted(gone)
        assert report.orphan_samples == ["ABCDEF0123456789ABCDEF01"]


def test_missing_and_orphan_in_one_bucket_are_found_fast(source_env: Env) -> None:
    """Equal counts prove nothing: one id swapped for another in the same bucket (at any level)
    leaves every count equal; the bucket's checksum differs, so the fast check finds both."""
    ids = spread_ids(10_000)
    synced(source_env, ids)
    missing = str(ids[1234])
    orphan = missing[:-1] + ("0" if missing[-1] != "0" else "1")
    drop_row(source_env, missing)
    add_row(source_env, orphan)
    fast, exact = fast_and_exact(source_env)
    for report in (fast, exact):
        assert (report.status, report.exit_code) == (CheckStatus.DRIFT, 4)
        assert (report.missing_samples, report.orphan_samples) == ([missing], [orphan])
    assert fast.buckets_differing == 1
    assert fast.ids_read_target < 200  # only the differing bucket was read from MySQL


def indexed_without_unique(env: Env) -> None:
    """The target table with an index on the column, but not a unique one (SQL both read)."""
    env.sql("CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) NOT NULL)")
    env.sql("CREATE INDEX cm_cluster_id_ix ON cm_cluster_id (cluster_id)")


def test_missing_id_and_duplicate_row_are_drift(source_env: Env) -> None:
    """Without a UNIQUE index a duplicated row makes up for a missing one in every count."""
    ids = spread_ids(3000)
    source_env.add_source(ids)
    indexed_without_unique(source_env)
    sync(Job(), source_env.settings())
    missing, doubled = str(ids[500]), str(ids[501])
    drop_row(source_env, missing)
    add_row(source_env, doubled)
    for report in fast_and_exact(source_env):
        assert (report.status, report.exit_code) == (CheckStatus.DRIFT, 4)
        assert report.missing_samples == [missing] and report.duplicate_rows == 1
        assert report.to_dict()["proof"] == ""  # a drift proves no agreement


def test_the_report_says_what_was_proven(source_env: Env) -> None:
    synced(source_env, [*spread_ids(500), "a-string-id"])
    fast, exact = fast_and_exact(source_env)
    assert fast.status is CheckStatus.OK and exact.status is CheckStatus.OK
    assert "checksum" in fast.proof and "every id" in exact.proof
    for report in (fast, exact):
        assert report.to_dict()["proof"] == report.proof
        assert report.proof in report.to_text()


def test_objectid_and_string_with_the_same_hex(operators_env: Env) -> None:
    """MongoDB keeps them apart (FerretDB cannot store both); one text, so one is rejected."""
    oid = spread_ids(1)[0]
    synced(operators_env, [*spread_ids(1000, seed=3), oid, str(oid)])
    for report in fast_and_exact(operators_env):
        assert report.status is CheckStatus.DRIFT
        assert (report.missing, report.orphans, report.rejected) == (0, 0, 1)
        assert report.rejected_samples[0].id == str(oid)


def test_fast_path_reads_few_mysql_rows(operators_env: Env) -> None:
    ids = spread_ids(20_000)
    synced(operators_env, ids)
    drop_row(operators_env, str(ids[7777]))
    add_row(operators_env, str(spread_ids(1, seed=42, every_s=1)[0]))
    fast, exact = fast_and_exact(operators_env)
    assert fast.method["target"].method is Method.BUCKETS
    assert (fast.missing, fast.orphans) == (exact.missing, exact.orphans) == (1, 1)
    assert fast.missing_samples == [str(ids[7777])]
    assert exact.ids_read_target == 20_000
    assert fast.ids_read_target < 0.02 * 20_000
    assert fast.bytes_read["mysql"] is not None and exact.bytes_read["mysql"] is not None
    assert fast.bytes_read["mysql"] < exact.bytes_read["mysql"] / 5


def test_source_keys_are_read_once_and_say_why(source_env: Env) -> None:
    """MongoDB's aggregation has no hash: its keys are read once and summarised here."""
    synced(source_env, spread_ids(1000))
    report = check(Job(), source_env.settings())
    assert report.method["source"].method is Method.EXACT
    assert "no hash function" in (report.method["source"].reason or "")
    assert report.method["target"].method is Method.BUCKETS
    assert report.ids_read_source == 1000 and report.ids_read_target == 0


def test_most_buckets_differ_reads_whole(operators_env: Env) -> None:
    operators_env.add_source(spread_ids(3000))
    operators_env.init_table()
    report = check(Job(), operators_env.settings())
    assert report.missing == 3000 and report.status is CheckStatus.DRIFT
    assert any("read both sides whole" in w for w in report.warnings)


def test_collation_collision_is_rejected_not_missing(source_env: Env) -> None:
    if source_env.mysql_url.startswith("postgresql"):
        pytest.skip("MySQL's collations: PostgreSQL's ICU case is in test_postgres_target")
    source_env.sql(
        "CREATE TABLE cm_cluster_id (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
        " cluster_id VARCHAR(64) COLLATE utf8mb4_general_ci NOT NULL, UNIQUE KEY (cluster_id))"
    )
    source_env.add_source(["abc", "def", *spread_ids(100)])
    sync(Job(), source_env.settings())
    source_env.sql("UPDATE cm_cluster_id SET cluster_id = 'ABC' WHERE cluster_id = 'abc'")
    for report in fast_and_exact(source_env):
        assert (report.missing, report.orphans, report.rejected) == (0, 1, 1)
        assert report.orphan_samples == ["ABC"]
        assert "collides with stored value 'ABC'" in report.rejected_samples[0].reason


def test_non_id_field_goes_the_exact_way(source_env: Env) -> None:
    job = Job(name="users", field="user", table="user_ids", column="user_id")
    source_env.mongo_db["cluster_trips"].insert_many(
        [{"user": "u1"}, {"user": "u1"}, {"user": ["u2", "u3"]}, {"other": 1}]
    )
    source_env.init_table(job)
    sync(job, source_env.settings())
    source_env.sql("DELETE FROM user_ids WHERE user_id = 'u2'")
    report = check(job, source_env.settings())
    assert report.method["source"].method is Method.EXACT
    assert "not _id" in (report.method["source"].reason or "")
    assert (report.missing_samples, report.orphans, report.rejected) == (["u2"], 0, 0)


def test_check_after_a_sync_reports_remaining_orphans(operators_env: Env) -> None:
    ids = spread_ids(500)
    operators_env.add_source(ids)
    operators_env.init_table()
    add_row(operators_env, "left-behind")
    done = sync(Job(), operators_env.settings())
    after = check_after(Job(), operators_env.settings(), done)
    assert after is not None and after.missing == 0 and after.orphans == 1
    # An orphan is not the run's to fix (only a mirror removes rows): the run's own code stands.
    assert (done.exit_code, exit_code_after(done, after)) == (0, 0)


def test_unreachable_source_fails_with_the_report(env: Env) -> None:
    bad = Settings(
        mongo_uri="mongodb://127.0.0.1:1/x", mysql_url=env.mysql_url, connect_timeout_s=1, retries=0
    )
    with pytest.raises(TransientError) as caught:
        check(Job(), bad)
    report = caught.value.report
    assert report is not None
    assert (report.status, report.exit_code) == (CheckStatus.FAILED, 1)


def test_cli_exit_codes_and_one_json_object(source_env: Env) -> None:
    ids = spread_ids(300)
    synced(source_env, ids)
    done = source_env.idsync("check", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "ok"
    drop_row(source_env, str(ids[3]))
    for args, env in ((("--json",), None), ((), {"IDSYNC_CHECK_EXACT": "1"})):
        done = source_env.idsync("check", *args, env=env)
        assert done.returncode == 4, done.stderr
        if args:
            report = json.loads(done.stdout)
            assert (report["status"], report["missing_samples"]) == ("drift", [str(ids[3])])
        else:
            assert "drift (exact)" in done.stdout and str(ids[3]) in done.stdout
    failed = source_env.idsync(
        "check", "--json", "--mongo-uri", "mongodb://127.0.0.1:1/x", "--connect-timeout", "1"
    )
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["status"] == "failed"


def test_run_check_after(env: Env) -> None:
    env.add_source([ObjectId() for _ in range(5)])
    env.idsync("init")
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES ('orphan-row')")
    done = env.idsync("run", "--check-after", "--json", "--no-log-ids")
    report = json.loads(done.stdout)
    assert report["inserted"] == 5 and report["check"]["orphans"] == 1
    assert done.returncode == 0  # proven: every source id is there; the orphan is reported
    assert any("1 orphan" in w and "mirror" in w for w in report["warnings"]), report["warnings"]
    env.sql("DELETE FROM cm_cluster_id WHERE cluster_id = 'orphan-row'")
    clean = env.idsync("run", "--check-after", "--exact", "--json", "--no-log-ids")
    assert clean.returncode == 0 and json.loads(clean.stdout)["check"]["status"] == "ok"
    kinds = [r[0] for r in env.sql("SELECT command FROM idsync_runs ORDER BY id")]
    assert kinds == ["run", "check", "run", "check"]


def test_mysql_checksums_match_the_clients_at_the_edges(env: Env) -> None:
    """MySQL's arithmetic (CONV of two 48-bit halves) gives the client's checksums exactly."""
    edges = ["0" * 24, "f" * 24, "0" * 11 + "1" + "f" * 12, "f" * 12 + "0" * 12, "7" * 24]
    synced(env, [*map(ObjectId, edges), *spread_ids(300)])
    report = check(Job(), env.settings())
    assert report.method["target"].method is Method.BUCKETS
    assert (report.status, report.buckets_differing, report.ids_read_target) == ("ok", 0, 0)


def test_duplicate_rows_are_drift(source_env: Env) -> None:
    """A table without a UNIQUE index holding an id twice is not in sync: exit 4 either way."""
    ids = spread_ids(2000)
    source_env.add_source([*ids, "a-string-id"])
    indexed_without_unique(source_env)
    sync(Job(), source_env.settings())
    add_row(source_env, str(ids[10]))
    add_row(source_env, "a-string-id")
    for args in ([], ["--exact"]):
        done = source_env.idsync("check", "--json", *args)
        report = json.loads(done.stdout)
        assert (done.returncode, report["status"]) == (4, "drift"), args
        assert report["duplicate_rows"] == 2 and report["missing"] == report["orphans"] == 0


def test_a_stored_id_with_a_trailing_newline_is_not_taken_for_the_id(source_env: Env) -> None:
    """A REGEXP `$` also matches before a final newline: `<oid>\\n` must not count as `<oid>`."""
    ids = spread_ids(5)
    source_env.add_source(ids)
    source_env.init_table()
    for oid in ids[1:]:
        add_row(source_env, str(oid))
    add_row(source_env, str(ids[0]) + "\n")
    for args in ([], ["--exact"]):
        done = source_env.idsync("check", "--json", *args)
        report = json.loads(done.stdout)
        assert (done.returncode, report["missing"], report["orphans"]) == (4, 1, 1), args


def test_a_crafted_checksum_twin_is_found(source_env: Env) -> None:
    """Two ids whose difference is a multiple of fixed moduli would share fixed checksums: the
    moduli are drawn at random for each check, so no id can be crafted to hide another."""
    ids = spread_ids(5)
    source_env.add_source(ids)
    source_env.init_table()
    for oid in ids[1:]:
        add_row(source_env, str(oid))
    twin = int(str(ids[0]), 16) + 67_108_859 * 67_108_837  # the moduli this check once fixed
    add_row(source_env, f"{twin:024x}")
    done = source_env.idsync("check", "--json")
    report = json.loads(done.stdout)
    assert (done.returncode, report["missing"], report["orphans"]) == (4, 1, 1)


def test_an_id_twice_in_the_source_and_twice_in_the_table_is_drift(operators_env: Env) -> None:
    """ObjectId X and the string X are one text: the second is rejected, as a run rejects it,
    so two source entries never balance two stored rows (FerretDB refuses such documents)."""
    env = operators_env
    ids = spread_ids(5)
    env.add_source([*ids, str(ids[0])])
    env.sql("CREATE TABLE cm_cluster_id (cluster_id VARCHAR(64) NOT NULL, KEY (cluster_id))")
    for oid in [ids[0], *ids]:
        add_row(env, str(oid))
    for args in ([], ["--exact"]):
        done = env.idsync("check", "--json", *args)
        report = json.loads(done.stdout)
        assert done.returncode == 4, args
        assert (report["rejected"], report["duplicate_rows"]) == (1, 1), args
