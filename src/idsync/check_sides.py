"""The servers as sides of a check: counts per bucket and ids per bucket, read on the server.

MongoDB: ``$group`` on ``{$substrBytes: [{$toString: "$_id"}, 0, k]}`` over an ``_id`` range,
which MongoDB answers from the ``_id`` index without sending an id. MySQL: ``GROUP BY LEFT(c, k)``
over the same range of the column's index, for values shaped like an ObjectId's text only.
Everything else (string, int, UUID ids; values of any other shape) is read and compared exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import bson
from bson import ObjectId

from idsync.buckets import HEX, OID_TEXT_SQL, prefix_bounds
from idsync.errors import TerminalError
from idsync.ids import stored_text
from idsync.source import MongoSource, split_batch
from idsync.target import Column, MySQLTarget

_LOWEST = ObjectId("0" * 24)
OBJECT_IDS: dict[str, Any] = {"_id": {"$gte": _LOWEST}}
"""Every ObjectId ``_id``: a comparison with an ObjectId matches ObjectIds only (MongoDB's type
bracketing), and finds them through the ``_id`` index."""
NOT_OBJECT_IDS: dict[str, Any] = {"_id": {"$not": {"$gte": _LOWEST}}}
"""Exactly the other documents. A negated comparison still has index bounds on MongoDB, which
a negated ``$type`` would not."""
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


def _range_query(prefix: str) -> dict[str, Any]:
    if not prefix:
        return OBJECT_IDS
    low, high = prefix_bounds(prefix)
    bounds: dict[str, Any] = {"$gte": ObjectId(low)}
    if high is not None:
        bounds["$lt"] = ObjectId(high)
    return {"_id": bounds}


def count_pipeline(prefix: str, length: int) -> list[dict[str, Any]]:
    """Ids under ``prefix`` counted by their first ``length`` hex characters."""
    key = {"$substrBytes": [{"$toString": "$_id"}, 0, length]}
    return [{"$match": _range_query(prefix)}, {"$group": {"_id": key, "n": {"$sum": 1}}}]


class MongoBuckets:
    """The source's ObjectId ``_id``s, counted and read per bucket on the server."""

    def __init__(self, source: MongoSource, reads: Reads) -> None:
        self.source, self.reads = source, reads

    def probe(self) -> str | None:
        """None when the server can count per bucket; else what it said."""
        pipeline = count_pipeline("", 4)
        pipeline.insert(1, {"$limit": 1})
        try:
            for _doc in self.source.aggregate(pipeline):
                pass
        except TerminalError as exc:
            return str(exc).split(", full error:")[0]
        return None

    def counts(self, prefix: str, length: int) -> dict[str, int]:
        found: dict[str, int] = {}
        started = time.perf_counter()
        for doc in self.source.aggregate(count_pipeline(prefix, length)):
            self.reads.mongo_bytes += len(bson.encode(doc))  # the reply's documents, as sent
            found[str(doc["_id"])] = int(doc["n"])
        self.reads.mongo_count_s += time.perf_counter() - started
        return found

    def ids(self, prefix: str) -> Iterator[str]:
        for batch in self.source.id_batches(_range_query(prefix)):
            self.reads.mongo_bytes += len(batch)
            oids, others = split_batch(batch)
            if others:
                raise TerminalError(
                    f"MongoDB at {self.source.address} matched {others[0]!r} by an ObjectId"
                    " range: its comparisons are not MongoDB's; check with --exact"
                )
            self.reads.source_ids += len(oids)
            yield from oids


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


class MySQLBuckets:
    """The target's values shaped like an ObjectId's text, counted and read per bucket.

    Ranges are written as hex text (``c >= '65a0…0' AND c < '65a1…0'``) in the column's own
    collation, so that the column's index finds them. Lowercase hex sorts the same under binary
    and the usual collations (``_bin``, ``general_ci``, ``unicode_ci``, ``0900``, ``uca1400``),
    but not under every one (a collation that contracts ``aa``, say):
    :func:`sorts_hex_as_bytes` says which, and the check reads the column whole otherwise.
    """

    def __init__(self, target: MySQLTarget, column: Column, reads: Reads) -> None:
        self.target, self.reads = target, reads
        self.col, self.table = _quote(target.column), _quote(target.table)
        value = self.col if column.fit.charset else f"CONVERT({self.col} USING latin1)"
        self.shaped = f"{value} REGEXP {_SHAPE}"

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

    def counts(self, prefix: str, length: int) -> dict[str, int]:
        where, args = self._where(prefix)
        started = time.perf_counter()
        rows = self.target.fetch(
            f"SELECT LEFT({self.col}, {int(length)}), COUNT(*) FROM {self.table}"
            f" WHERE {where} GROUP BY 1",
            args,
            f"counting {self.target.table} per bucket",
        )
        self.reads.mysql_count_s += time.perf_counter() - started
        return {_text(key): int(count) for key, count in rows}

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
    collation = (column.collation or "").lower()
    return column.fit.charset is None or collation.endswith(("_nopad_bin", "_0900_bin"))


def stored_equal(target: MySQLTarget, texts: Iterable[str]) -> dict[str, str]:
    """For texts with no exact copy in the column: the stored value each equals under the
    column's collation (``'ABC'`` for ``'abc'`` in a case-insensitive column), if any."""
    chunk = list(texts)
    if not chunk:
        return {}
    col, table = _quote(target.column), _quote(target.table)
    marks = ", ".join(["%s"] * len(chunk))
    doing = "checking ids against the column's collation"
    if not target.fetch(f"SELECT 1 FROM {table} WHERE {col} IN ({marks}) LIMIT 1", chunk, doing):
        return {}
    found: dict[str, str] = {}
    for text in chunk:
        rows = target.fetch(f"SELECT {col} FROM {table} WHERE {col} = %s LIMIT 1", [text], doing)
        if rows and _text(rows[0][0]) != text:
            found[text] = _text(rows[0][0])
    return found


def session_bytes_sent(target: MySQLTarget) -> int | None:
    """Bytes the MySQL server has sent on this connection so far."""
    try:
        rows = target.fetch("SHOW SESSION STATUS LIKE 'Bytes_sent'")
    except TerminalError:
        return None
    return int(rows[0][1]) if rows else None
