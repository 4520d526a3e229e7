"""Facts check's buckets need from MySQL: whether its collation sorts hex text as bytes, and
what the session has sent. The buckets themselves are :class:`idsync.session.SqlBuckets` over
:mod:`idsync.mysql.dialect`.
"""

from __future__ import annotations

from idsync.errors import TerminalError
from idsync.ids import HEX
from idsync.mysql import dialect
from idsync.mysql.connection import Connection
from idsync.session import shown
from idsync.target import Column


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
    return [shown(v) for (v,) in rows] == sorted(texts)


def bytes_sent(conn: Connection) -> int | None:
    """Bytes the server has sent on this connection so far."""
    try:
        rows = conn.fetch(dialect.BYTES_SENT)
    except TerminalError:
        return None
    return int(rows[0][1]) if rows else None
