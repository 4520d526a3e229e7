"""MySQL's SQL text, checked without a server: names quoted, values never inlined, limits kept."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from idsync import sqltext
from idsync.ids import PRIMES, checksums
from idsync.mysql import dialect
from idsync.runs import FIELDS


def test_names_are_quoted_and_values_are_parameters() -> None:
    sql = dialect.upsert("order", "select")
    assert sql == (
        "INSERT INTO `order` (`select`) VALUES (%s) ON DUPLICATE KEY UPDATE `select` = `select`"
    )
    assert dialect.values_of("t", "c", 3) == "SELECT `c` FROM `t` WHERE `c` IN (%s, %s, %s)"
    assert dialect.any_of("t", "c", 1).endswith("IN (%s) LIMIT 1")
    assert dialect.select_column("t", "c") == "SELECT `c` FROM `t` WHERE `c` IS NOT NULL"


@pytest.mark.parametrize(
    ("build", "prefix"),
    [
        (lambda n: dialect.run_lock_name("d" * n, "t", "c"), "idsync:"),
        (lambda n: dialect.watch_lock_name("d" * n, "t.c", "job"), "idsync-watch:"),
    ],
)
def test_lock_names_fit_the_servers_limit(build: Callable[[int], str], prefix: str) -> None:
    short, long, longer = build(4), build(64), build(65)
    assert short.startswith(prefix) and "dddd" in short
    assert len(long) <= dialect.LOCK_NAME_MAX and len(longer) <= dialect.LOCK_NAME_MAX
    assert long != longer  # hashed names still tell targets apart


def test_the_run_lock_is_named_after_the_column() -> None:
    assert dialect.run_lock_name("maas", "cm_cluster_id", "cluster_id") == (
        "idsync:maas.cm_cluster_id.cluster_id"
    )


def _evaluate(expression: str, text: str) -> int:
    """The checksum SQL evaluated in Python for one text: CONV/LEFT/SUBSTRING/MOD/CAST only."""
    python = expression.replace("`c`", repr(text))
    python = re.sub(r"CAST\((.*?) AS UNSIGNED\)", r"(\1)", python)
    python = python.replace("CONV(", "_conv(").replace("LEFT(", "_left(")
    python = python.replace("SUBSTRING(", "_substring(").replace("MOD(", "_mod(")
    helpers = {
        "_conv": lambda s, _f, _t: int(s, 16),
        "_left": lambda s, n: s[:n],
        "_substring": lambda s, start, n: s[start - 1 : start - 1 + n],
        "_mod": lambda a, b: a % b,
    }
    return int(eval(python, helpers))  # our own SQL text, rewritten above


@pytest.mark.parametrize("text", ["000000000000000000000000", "65a0f1e2d3c4b5a697887766", "f" * 24])
def test_the_checksum_sql_computes_what_the_client_computes(text: str) -> None:
    sql = [dialect.checksum("c", prime) for prime in PRIMES]
    assert tuple(_evaluate(part, text) for part in sql) == checksums(text, PRIMES)


def test_oid_shape_pins_the_length_and_the_case() -> None:
    shaped = dialect.oid_shaped("c", binary=False)
    assert "CHAR_LENGTH(`c`) = 24" in shaped and "(?-i)" in shaped
    assert "CONVERT(`c` USING latin1)" in dialect.oid_shaped("c", binary=True)


def test_summaries_group_by_prefix_with_one_sum_per_modulus() -> None:
    sums = [dialect.checksum("c", prime) for prime in (7, 11)]
    sql = sqltext.summaries("`t`", "`c`", "TRUE", 6, sums)
    assert sql.startswith("SELECT LEFT(`c`, 6), COUNT(*), SUM(")
    assert sql.count("SUM(") == 2 and sql.endswith("WHERE TRUE GROUP BY 1")


def test_history_statements_name_every_field_once() -> None:
    insert = dialect.insert_run(FIELDS)
    assert insert.count("%s") == len(FIELDS)
    assert dialect.recent_runs(FIELDS, one_job=True).count("%s") == 2
    assert dialect.recent_runs(FIELDS, one_job=False).count("%s") == 1
    assert dialect.last_success(FIELDS, 2, 2).count("%s") == 5


def test_probes_write_nothing() -> None:
    for sql in [
        *dialect.write_probes("t", "c"),
        *dialect.state_probes(("job", "target", "mode")),
        *dialect.history_probes(("run_id",)),
    ]:
        assert "LIMIT 0" in sql or "WHERE FALSE" in sql
    assert "(probe INT, probe INT)" in dialect.state_create_probe()  # bound to fail after the check
