"""The servers as sides of a check: MySQL's summaries and ids per bucket, MongoDB's keys.

A bucket's summary is its count and the sums of :func:`idsync.check.buckets.checksums` over its ids.
MySQL computes it with ``GROUP BY LEFT(c, k)`` over a range of the column's index, the checksum
from the text's two 48-bit halves (``CONV``), for values shaped like an ObjectId's text only.
MongoDB's side is its keys, read once and summarised on the client. Everything else (string,
int, UUID ids; values of any other shape) is read and compared exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from idsync.errors import TerminalError
from idsync.ids import HEX, OID_TEXT_SQL, PRIMES, Summary, prefix_bounds, stored_text
from idsync.mongo.raw import split_batch
from idsync.mongo.source import MongoSource
from idsync.mysql.target import Column, MySQLTarget

# MySQL REGEXP is case-insensitive under a _ci collation; (?-i) turns that off both in
# MariaDB's PCRE and in MySQL 8's ICU engine.
_SHAPE = f"'(?-i){OID_TEXT_SQL}'"


@dataclass
class Reads:
    """What a check read from the servers, and how long their counts per bucket took."""

    source_ids: int = 0
    target_ids: int = 0
    mongo_bytes: int = 0
    mongo_count_s: float = 0.0
    mysql_count_s: float = 0.0


def mongo_values(source: MongoSource, query: dict[str, Any], reads: Reads) -> Iterator[object]:
    """The raw ``_id`` of every document matching ``query``; ObjectIds come as their text."""
    for oids, others in mongo_batches(source, query, reads):
        yield from oids
        yield from others


def mongo_batches(
    source: MongoSource, query: dict[str, Any], reads: Reads
) -> Iterator[tuple[list[str], list[object]]]:
    """:func:`mongo_values` a reply batch at a time: (ObjectId texts, other raw values)."""
    for batch in source.id_batches(query):
        reads.mongo_bytes += len(batch)
        oids, others = split_batch(batch)
        reads.source_ids += len(oids) + len(others)
        yield oids, others


def _quote(name: str) -> str:
    return f"`{name}`"  # names were validated as plain identifiers (config.py)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _checksum_sql(col: str, prime: int) -> str:
    """:func:`idsync.check.buckets.checksums` of the hex text in ``col``, for one prime."""
    high = f"CAST(CONV(LEFT({col}, 12), 16, 10) AS UNSIGNED)"
    low = f"CAST(CONV(SUBSTRING({col}, 13, 12), 16, 10) AS UNSIGNED)"
    number = f"MOD(MOD({high}, {prime}) * {pow(2, 48, prime)} + MOD({low}, {prime}), {prime})"
    return f"MOD({number} * {number}, {prime})"


class MySQLBuckets:
    """The target's values shaped like an ObjectId's text, summarised and read per bucket.

    Ranges are written as hex text (``c >= '65a0…0' AND c < '65a1…0'``) in the column's own
    collation, so that the column's index finds them. Lowercase hex sorts the same under binary
    and the usual collations (``_bin``, ``general_ci``, ``unicode_ci``, ``0900``, ``uca1400``),
    but not under every one (a collation that contracts ``aa``, say):
    :func:`sorts_hex_as_bytes` says which, and the check reads the column whole otherwise.
    """

    def __init__(
        self, target: MySQLTarget, column: Column, reads: Reads, moduli: tuple[int, int] = PRIMES
    ) -> None:
        self.target, self.reads, self.moduli = target, reads, moduli
        self.col, self.table = _quote(target.column), _quote(target.table)
        value = self.col if column.fit.charset else f"CONVERT({self.col} USING latin1)"
        # The length too: REGEXP's `$` also matches before a final newline, and `<id>\n` would
        # be summed as `<id>`.
        self.shaped = f"CHAR_LENGTH({value}) = 24 AND {value} REGEXP {_SHAPE}"

    def probe(self) -> str | None:
        """None when the server runs the bucket queries; else what it said."""
        try:
            self.target.fetch(f"SELECT 1 FROM {self.table} WHERE {self.shaped} LIMIT 1")
        except TerminalError as exc:
            return str(exc)
        return None

    def _where(self, prefix: str) -> tuple[str, list[object]]:
        if not prefix:
            return self.shaped, []
        low, high = prefix_bounds(prefix)
        if high is None:
            return f"{self.col} >= %s AND {self.shaped}", [low]
        return f"{self.col} >= %s AND {self.col} < %s AND {self.shaped}", [low, high]

    def summaries(self, prefix: str, length: int) -> dict[str, Summary]:
        where, args = self._where(prefix)
        sums = ", ".join(f"SUM({_checksum_sql(self.col, prime)})" for prime in self.moduli)
        started = time.perf_counter()
        rows = self.target.fetch(
            f"SELECT LEFT({self.col}, {int(length)}), COUNT(*), {sums} FROM {self.table}"
            f" WHERE {where} GROUP BY 1",
            args,
            f"counting {self.target.table} per bucket",
        )
        self.reads.mysql_count_s += time.perf_counter() - started
        return {_text(key): Summary(*map(int, figures)) for key, *figures in rows}

    def ids(self, prefix: str) -> Iterator[str]:
        where, args = self._where(prefix)
        sql = f"SELECT {self.col} FROM {self.table} WHERE {where}"
        for (value,) in self.target.stream(sql, args, f"reading {self.target.table}"):
            self.reads.target_ids += 1
            yield stored_text(value)

    def others(self) -> Iterator[str]:
        """Every value not shaped like an ObjectId's text."""
        sql = (
            f"SELECT {self.col} FROM {self.table}"
            f" WHERE {self.col} IS NOT NULL AND NOT ({self.shaped})"
        )
        for (value,) in self.target.stream(sql, (), f"reading {self.target.table}"):
            self.reads.target_ids += 1
            yield stored_text(value)


def target_values(target: MySQLTarget, reads: Reads) -> Iterator[str]:
    """Every non-null value of the column, counted as read."""
    for texts in target_batches(target, reads):
        yield from texts


def target_batches(target: MySQLTarget, reads: Reads) -> Iterator[list[str]]:
    """:func:`target_values` a fetch at a time."""
    for texts in target.read_id_batches():
        reads.target_ids += len(texts)
        yield texts


def sorts_hex_as_bytes(target: MySQLTarget, column: Column) -> bool:
    """Whether the column's collation orders hex text as its bytes (all 1- and 2-character
    strings of hex digits, which covers the contractions collations have)."""
    if column.fit.charset is None or column.collation is None:
        return True  # binary column: bytes order
    if not (column.collation + column.fit.charset).replace("_", "").isalnum():
        return False
    texts = [*HEX, *(a + b for a in HEX for b in HEX)]
    union = " UNION ALL ".join(["SELECT %s AS v"] * len(texts))
    rows = target.fetch(
        f"SELECT v FROM ({union}) AS hex"
        f" ORDER BY CONVERT(v USING {column.fit.charset}) COLLATE {column.collation}",
        texts,
        "checking the column's collation",
    )
    return [_text(v) for (v,) in rows] == sorted(texts)


def exact_collation(column: Column) -> bool:
    """Whether two different texts can never be equal in the column (binary, NO PAD)."""
    return column.exact


def stored_equal(target: MySQLTarget, texts: Iterable[str]) -> dict[str, str]:
    """For texts with no exact copy in the column: the stored value each equals under the
    column's collation (``'ABC'`` for ``'abc'`` in a case-insensitive column), if any."""
    return target.stored_equal(list(texts))


def session_bytes_sent(target: MySQLTarget) -> int | None:
    """Bytes the MySQL server has sent on this connection so far."""
    try:
        rows = target.fetch("SHOW SESSION STATUS LIKE 'Bytes_sent'")
    except TerminalError:
        return None
    return int(rows[0][1]) if rows else None
