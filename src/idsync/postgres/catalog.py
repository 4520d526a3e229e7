"""The target column as PostgreSQL's catalog describes it: type, length, collation, unique index.

What PostgreSQL stores exactly: ``text`` and ``varchar(n)`` return every character as sent
(``n`` counts characters); ``char(n)`` pads with spaces and drops them when compared, so an id
ending in a space would not come back: refused before it is written. ``bytea`` is not a text.
A nondeterministic (ICU) collation takes texts for equal that differ (case, accents): the
column is then not exact, and ids that collide are found and named as on MySQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from idsync.errors import ConfigError
from idsync.ids import ColumnFit
from idsync.mirroring import require_mark
from idsync.postgres import dialect, mirror
from idsync.target import Column

Query = Callable[[str, Sequence[object], str], Any]

_TEXT_TYPES = {"text", "character varying", "character"}
_CHAR_SPACES = "a CHAR column drops trailing spaces when it is read"
_CHARSET = "UTF8"  # the server refuses what its encoding cannot hold; the client checks nothing


def describe_column(query: Query, table: str, column: str) -> tuple[Column, str]:
    """Read the column's type, size, collation and indexes; refuse what cannot hold ids. With
    the column, its collation as a COLLATE clause takes it (quoted, with its schema)."""
    rows = query(dialect.COLUMN_FACTS, (table, column), "inspecting the column")
    if not rows:
        raise ConfigError(f"column {column} not found in table {table}")
    data_type, length, collation, qualified, deterministic, schema, name_table, name_column = rows[
        0
    ]
    data_type = str(data_type)
    if data_type not in _TEXT_TYPES:
        raise ConfigError(f"column {table}.{column} is {data_type}: ids need a text type")
    spaces = _CHAR_SPACES if data_type == "character" else None
    fit = ColumnFit(None if length is None else int(length), None, _CHARSET, spaces, nul=False)
    indexes = query(dialect.UNIQUE_ON, (table, column), "inspecting the indexes")
    unique, ordered = bool(indexes), any(bool(in_order) for (in_order,) in indexes)
    rewriters = tuple(
        str(name) for (name,) in query(dialect.REWRITERS, (table,), "inspecting the triggers")
    )
    names = (str(schema), str(name_table), str(name_column))
    # deterministic: whether the collation compares bytes alone (libc and C collations do; an
    # ICU one may not); None (no collation) cannot happen for a text type.
    exact = True if deterministic is None else bool(deterministic)
    column_facts = Column(data_type, fit, str(collation), unique, names, rewriters, exact, ordered)
    return column_facts, str(qualified or '"C"')


MARK_DDL = "timestamptz NULL"
"""A mark column as `init` makes it."""


def mark_time(query: Query, table: str, mark: str) -> str:
    """What sets the mark column to now, once :func:`~idsync.mirroring.require_mark` accepts it:
    a ``timestamp`` without time zone is given UTC's wall time."""
    rows = query(mirror.MARK_FACTS, (table, mark), "inspecting the mark column")
    kind = require_mark(rows[0] if rows else None, table, mark, MARK_DDL)
    return "now()" if kind == "timestamp with time zone" else "(now() AT TIME ZONE 'UTC')"
