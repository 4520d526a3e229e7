"""Mirror mode's SQL text on MySQL: rows locked and deleted (or marked, and their marks cleared)
by value, what references the table (foreign keys, triggers on deletes or updates), the mark
column's facts, the privileges' probes. No connection."""

from __future__ import annotations

from idsync import sqltext
from idsync.mysql.dialect import marks, quote, values_of


def lock_values(table: str, column: str, count: int, mark: str | None = None) -> str:
    """The stored (unmarked) values equal to any of ``count`` texts, their rows (and the gaps
    beside them, under REPEATABLE READ) locked until the transaction ends."""
    return values_of(table, column, count, mark) + " FOR UPDATE"


def lock_nothing(table: str, column: str) -> str:
    """A lock of no row: the server checks what SELECT … FOR UPDATE needs all the same."""
    return f"SELECT {quote(column)} FROM {quote(table)} WHERE 1 = 0 FOR UPDATE"


def delete_nothing(table: str) -> str:
    """A delete of no row: the server checks the DELETE privilege all the same."""
    return f"DELETE FROM {quote(table)} WHERE 1 = 0"


def mark_values(table: str, column: str, marking: tuple[str, str], count: int) -> str:
    """Mark the unmarked rows of ``count`` texts (soft delete): ``marking`` is the mark column
    and what sets it to now."""
    flag, now = quote(marking[0]), marking[1]
    where = f"{quote(column)} IN ({marks(count)}) AND {flag} IS NULL"
    return sqltext.set_mark(quote(table), flag, now, where)


def mark_nothing(table: str, mark: str) -> str:
    """An update of no row's mark: the server checks the UPDATE privilege all the same."""
    return sqltext.set_mark(quote(table), quote(mark), "NULL", "1 = 0")


def delete_values(table: str, column: str, count: int) -> str:
    """Delete the rows equal to any of ``count`` texts under the column's collation."""
    return f"DELETE FROM {quote(table)} WHERE {quote(column)} IN ({marks(count)})"


# The foreign keys that reference a table (schema, table): name, referencing table, its columns,
# the delete rule. The catalog shows those on tables the user has some privilege on.
REFERENCES = (
    "SELECT rc.CONSTRAINT_NAME, CONCAT(rc.CONSTRAINT_SCHEMA, '.', rc.TABLE_NAME),"
    " GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR ','), rc.DELETE_RULE"
    " FROM information_schema.REFERENTIAL_CONSTRAINTS rc"
    " JOIN information_schema.KEY_COLUMN_USAGE k"
    " ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME"
    " AND k.TABLE_NAME = rc.TABLE_NAME"
    " WHERE rc.UNIQUE_CONSTRAINT_SCHEMA = %s AND rc.REFERENCED_TABLE_NAME = %s"
    " GROUP BY rc.CONSTRAINT_SCHEMA, rc.CONSTRAINT_NAME, rc.TABLE_NAME, rc.DELETE_RULE"
    " ORDER BY 2, 1"
)


# The table's triggers on an event, DELETE or UPDATE (what marks do), those of tables the user
# has the TRIGGER privilege on.
EVENT_TRIGGERS = (
    "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS"
    " WHERE EVENT_OBJECT_SCHEMA = %s AND EVENT_OBJECT_TABLE = %s AND EVENT_MANIPULATION = %s"
)


MARK_FACTS = (
    "SELECT DATA_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS"
    " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND COLUMN_NAME = %s"
)


def unmark(table: str, column: str, mark: str, count: int) -> str:
    """Clear the mark of the rows of ``count`` texts that have one: those ids came back."""
    flag = quote(mark)
    where = f"{quote(column)} IN ({marks(count)}) AND {flag} IS NOT NULL"
    return sqltext.set_mark(quote(table), flag, "NULL", where)
