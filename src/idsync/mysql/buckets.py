"""The target's ObjectId texts summarised and read per hex prefix, for check's buckets.

A bucket's summary is its count and the sums of :func:`idsync.ids.checksums` over its ids,
computed by the server with ``GROUP BY LEFT(c, k)`` over a range of the column's index, for
values shaped like an ObjectId's text only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from idsync.errors import TerminalError
from idsync.ids import HEX, Summary, prefix_bounds, stored_text
from idsync.mysql import dialect
from idsync.mysql.connection import Connection
from idsync.target import Column


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


class MySQLBuckets:
    """The target's values shaped like an ObjectId's text, summarised and read per bucket.

    Ranges are written as hex text (``c >= '65a0…0' AND c < '65a1…0'``) in the column's own
    collation, so that the column's index finds them. Lowercase hex sorts the same under binary
    and the usual collations (``_bin``, ``general_ci``, ``unicode_ci``, ``0900``, ``uca1400``),
    but not under every one (a collation that contracts ``aa``, say):
    :func:`sorts_hex_as_bytes` says which, and the check reads the column whole otherwise.
    """

    def __init__(
        self, conn: Connection, table: str, column: Column, name: str, moduli: tuple[int, int]
    ) -> None:
        self.conn, self.table, self.column, self.moduli = conn, table, name, moduli
        self.shaped = dialect.oid_shaped(name, binary=not column.fit.charset)
        self.ids_read = 0
        """Values read (summaries are not ids)."""
        self.count_s = 0.0
        """Time the server took to summarise."""

    def probe(self) -> str | None:
        """None when the server runs the bucket queries; else what it said."""
        try:
            self.conn.fetch(f"{dialect.select_where(self.table, self.column, self.shaped)} LIMIT 1")
        except TerminalError as exc:
            return str(exc)
        return None

    def _where(self, prefix: str) -> tuple[str, list[object]]:
        if not prefix:
            return self.shaped, []
        low, high = prefix_bounds(prefix)
        bounds: list[object] = [low] if high is None else [low, high]
        return f"{dialect.in_range(self.column, True, high is not None)} AND {self.shaped}", bounds

    def summaries(self, prefix: str, length: int) -> dict[str, Summary]:
        where, args = self._where(prefix)
        started = time.perf_counter()
        rows = self.conn.fetch(
            dialect.summaries(self.table, self.column, where, length, self.moduli),
            args,
            f"counting {self.table} per bucket",
        )
        self.count_s += time.perf_counter() - started
        return {_text(key): Summary(*map(int, figures)) for key, *figures in rows}

    def ids(self, prefix: str) -> Iterator[str]:
        where, args = self._where(prefix)
        sql = dialect.select_where(self.table, self.column, where)
        for (value,) in self.conn.stream(sql, args, f"reading {self.table}"):
            self.ids_read += 1
            yield stored_text(value)

    def others(self) -> Iterator[str]:
        """Every value not shaped like an ObjectId's text."""
        col = dialect.quote(self.column)
        where = f"{col} IS NOT NULL AND NOT ({self.shaped})"
        sql = dialect.select_where(self.table, self.column, where)
        for (value,) in self.conn.stream(sql, (), f"reading {self.table}"):
            self.ids_read += 1
            yield stored_text(value)


def sorts_hex_as_bytes(conn: Connection, column: Column) -> bool:
    """Whether the column's collation orders hex text as its bytes (all 1- and 2-character
    strings of hex digits, which covers the contractions collations have)."""
    if column.fit.charset is None or column.collation is None:
        return True  # binary column: bytes order
    if not (column.collation + column.fit.charset).replace("_", "").isalnum():
        return False
    texts = [*HEX, *(a + b for a in HEX for b in HEX)]
    rows = conn.fetch(
        dialect.ordered_texts(column.fit.charset, column.collation, len(texts)),
        texts,
        "checking the column's collation",
    )
    return [_text(v) for (v,) in rows] == sorted(texts)


def bytes_sent(conn: Connection) -> int | None:
    """Bytes the server has sent on this connection so far."""
    try:
        rows = conn.fetch(dialect.BYTES_SENT)
    except TerminalError:
        return None
    return int(rows[0][1]) if rows else None
