"""The dlt contender's pure parts: when its table is exact, its values, its published table."""

from bench.dlt_job import dataset_name, plain, sqlalchemy_url
from bench.dlt_report import exact_runs, table
from bench.dlt_target import exactness
from bson import ObjectId


def test_a_table_with_each_source_id_once_is_exact() -> None:
    assert exactness(["b", "a", "c"], {"a", "b", "c"}) is None


def test_duplicates_missing_and_foreign_ids_are_each_named() -> None:
    problem = exactness(["a", "a", "x"], ["a", "b", "c"])
    assert problem == "1 ids more than once; 2 ids missing; 1 ids not in the source"


def test_object_ids_become_text_at_any_depth() -> None:
    oid = ObjectId("6553f10038b4e652e44da7f2")
    doc = {"_id": oid, "trips": [{"_id": oid, "n": 1}], "centroid": {"lat": 1.5}}
    assert plain(doc) == {
        "_id": "6553f10038b4e652e44da7f2",
        "trips": [{"_id": "6553f10038b4e652e44da7f2", "n": 1}],
        "centroid": {"lat": 1.5},
    }


def test_dlt_names_its_own_dataset_and_reaches_mysql_through_mysqlclient() -> None:
    assert dataset_name("dlt_bench_10k", docs=False) == "dlt_bench_10k_dlt"
    assert dataset_name("dlt_bench_10k", docs=True) == "dlt_bench_10k_dlt_docs"
    url = sqlalchemy_url("mysql://u:p@127.0.0.1:33306/db1")
    assert url == "mysql+mysqldb://u:p@127.0.0.1:33306/db1?charset=utf8mb4"


def _cell(contender: str, wall: float, errors: int = 0) -> dict[str, object]:
    spread = {"median": wall, "min": wall, "max": wall}
    return {
        "source": "mongo-java", "shape": "ids", "n": 10_000, "scenario": "c",
        "contender": contender, "runs": [{}, {}], "errors": ["x"] * errors,
        "wall_s": spread, "cpu_s": spread, "rss_mb": spread,
        "rows_written": {"median": 0 if contender == "idsync" else 10_000},
    }  # fmt: skip


def test_the_table_puts_idsync_first_and_divides_it_by_dlt() -> None:
    lines = table([_cell("dlt", 2.0, errors=1), _cell("idsync", 0.5)], "ids")
    idsync_row, dlt_row = lines[2], lines[3]
    assert "**idsync**" in idsync_row
    assert "| 0 | 2 of 2 |" in idsync_row
    times = "\u00d7"  # the multiplication sign of the published tables
    assert f"| 10,000 | 2 of 3 | 0.25{times} | 0.25{times} | 0.25{times} |" in dlt_row
    assert exact_runs({"runs": [], "errors": []}) == "0 of 0"
