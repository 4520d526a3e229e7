"""The target column as the server describes it: its type, what it stores exactly, its index."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from idsync.errors import ConfigError
from idsync.ids import ColumnFit, stored_text
from idsync.mirroring import require_mark
from idsync.mysql import dialect, mirror
from idsync.mysql.connection import Connection
from idsync.target import Column

Query = Callable[[str, Sequence[object], str], Any]
"""Runs one statement and returns its rows (:meth:`Connection.fetch`)."""

_TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}
# Not fixed-length BINARY: it pads every id with zero bytes, so no value would read back as sent.
_BINARY_TYPES = {"varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
MARK_DDL = "DATETIME(6) NULL"
"""A mark column as `init` makes it."""
_CATALOG_NAME = re.compile(r"[A-Za-z0-9_]+")  # a character set or collation, as catalogs name it


def describe_column(query: Query, database: str, table: str, column: str) -> Column:
    """Read the column's type, size, character set and indexes; refuse what cannot hold ids."""
    rows = query(
        dialect.COLUMN_FACTS,
        (database, table, column),
        "inspecting the column",
    )
    where = f"{database}.{table}"
    if not rows:
        raise ConfigError(f"column {column} not found in table {where}")
    data_type, length, charset, collation, *names = rows[0]
    database, table, column = (str(name) for name in names)
    data_type = str(data_type).lower()
    if data_type in _TEXT_TYPES:
        spaces = _trailing_spaces(query, data_type, str(charset), str(collation))
        fit = ColumnFit(int(length), None, charset, trailing_spaces=spaces)
    elif data_type in _BINARY_TYPES:
        fit = ColumnFit(max_chars=None, max_bytes=int(length), charset=None)
    else:
        raise ConfigError(f"column {where}.{column} is {data_type}: ids need a text type")
    unique, ordered = _unique_index(query, database, table, column)
    triggers = _rewriting_triggers(query, database, table)
    names = (database, table, column)
    return Column(data_type, fit, collation, unique, names, triggers, ordered=ordered)


def mark_time(query: Query, database: str, table: str, mark: str) -> str:
    """What sets the mark column to now, once :func:`~idsync.mirroring.require_mark` accepts it: a
    TIMESTAMP takes the session's time (it stores the instant), a DATETIME is given UTC."""
    rows = query(mirror.MARK_FACTS, (database, table, mark), "inspecting the mark column")
    kind = require_mark(rows[0] if rows else None, f"{database}.{table}", mark, MARK_DDL)
    return "CURRENT_TIMESTAMP(6)" if kind == "timestamp" else "UTC_TIMESTAMP(6)"


def _rewriting_triggers(query: Query, database: str, table: str) -> tuple[str, ...]:
    rows = query(
        dialect.REWRITING_TRIGGERS,
        (database, table),
        "inspecting the table's triggers",
    )
    return tuple(f"trigger {name}" for (name,) in rows)


def _trailing_spaces(query: Query, data_type: str, charset: str, collation: str) -> str | None:
    """Why this text column would not return a trailing space exactly, or None."""
    if data_type == "char":
        return "a CHAR column drops trailing spaces when it is read"
    if not (_CATALOG_NAME.fullmatch(charset) and _CATALOG_NAME.fullmatch(collation)):
        raise ConfigError(f"unknown character set or collation: {charset!r} {collation!r}")
    # Asked of the server itself: MariaDB's catalog has no PAD_ATTRIBUTE.
    [(pads,)] = query(
        dialect.pads_space(charset, collation),
        (),
        "inspecting the collation",
    )
    if pads:
        return f"the collation {collation} (PAD SPACE) takes it for the text without it"
    return None


def _unique_index(query: Query, database: str, table: str, column: str) -> tuple[bool, bool]:
    """Whether a UNIQUE index is on exactly the column, and whether one such is a B-tree."""
    rows = query(
        dialect.UNIQUE_INDEXES,
        (column, database, table),
        "inspecting the indexes",
    )
    own = [int(btree or 0) == 1 for _name, count, exact, btree in rows
           if int(count) == 1 and int(exact or 0) == 1]  # fmt: skip
    return bool(own), any(own)


_CHUNK = 1000


def stored_equal(conn: Connection, table: str, column: str, texts: Sequence[str]) -> dict[str, str]:
    """For texts with no exact copy in the column: the stored value each equals under the
    column's collation (``'ABC'`` for ``'abc'`` in a case-insensitive column), if any."""
    found: dict[str, str] = {}
    doing = "checking ids against the column's collation"
    for start in range(0, len(texts), _CHUNK):
        chunk = list(texts[start : start + _CHUNK])
        if not conn.fetch(dialect.any_of(table, column, len(chunk)), chunk, doing):
            continue  # the usual case: one statement says none of them is there
        for text in chunk:
            rows = conn.fetch(dialect.equal_to(table, column), [text], doing)
            if rows and stored_text(rows[0][0]) != text:
                found[text] = stored_text(rows[0][0])
    return found


def collation_keys(conn: Connection, texts: Sequence[str], column: Column) -> list[bytes]:
    """Each text's sort key under the column's collation (``WEIGHT_STRING``): two texts the
    column takes for equal have equal keys, as ``'x'`` and ``'X'`` under a ``_ci`` one."""
    charset, collation = column.fit.charset, column.collation
    if not charset or not collation:
        return [text.encode() for text in texts]  # a binary column: bytes are the key
    found: list[bytes] = []
    for start in range(0, len(texts), _CHUNK):
        chunk = list(texts[start : start + _CHUNK])
        sql = dialect.weight_strings(charset, collation, len(chunk))
        [row] = conn.fetch(sql, chunk, "asking the column's collation")
        found.extend(bytes(value) for value in row)
    return found
