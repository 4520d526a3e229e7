"""What mirror mode needs of the table: an exact UNIQUE column, no cascade it did not allow,
and for a soft delete (``orphan_action = "mark:<column>"``) a mark column that can mark.

A marked row is not the target's: every read leaves it out, an orphan's row is marked instead of
deleted, and an id that comes back has its mark cleared. So the column must take NULL (unmarked),
be NULL by default (a new row is the target's), and hold a date and time (when it was marked).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from idsync.config import Job
from idsync.errors import ConfigError, GuardError
from idsync.target import TRIGGER, Column, Reference, Target

_NULL = re.compile(r'NULL(::[\w ."]+)?', re.IGNORECASE)
DATE_TIMES = {"datetime", "timestamp", "timestamp without time zone", "timestamp with time zone"}


def require_mark(
    facts: tuple[object, object, object, object] | None, table: str, mark: str, added: str
) -> str:
    """The mark column's type, from its (type, nullable, default, how else it is set) in the
    catalog; or why it cannot mark (``added``: the column to add, as the server's DDL spells
    it)."""
    if facts is None:
        raise ConfigError(
            f"table {table} has no column {mark} to mark orphans with: add it"
            f" (ALTER TABLE {table} ADD COLUMN {mark} {added}) or run `idsync init` on a new table"
        )
    data_type, nullable, default, extra = facts
    kind = str(data_type).lower()
    problems = [] if kind in DATE_TIMES else [f"be a date and time (it is {kind})"]
    if str(nullable).upper() != "YES":
        problems.append("allow NULL (NULL: not marked)")
    # MariaDB's catalog writes a NULL default as the word NULL; PostgreSQL's, over a domain's
    # own default, as NULL cast to the type.
    if default is not None and not _NULL.fullmatch(str(default)):
        problems.append(f"default to NULL (it defaults to {default}: new rows would be marked)")
    if "generated" in str(extra).lower() or "on update" in str(extra).lower():
        # Generated: no statement may set it. ON UPDATE: any other update would mark the row.
        problems.append(f"be set by statements alone (it is {extra})")
    if problems:
        raise ConfigError(f"{table}.{mark}, orphans' mark column, must {' and '.join(problems)}")
    return kind


def require_exact_unique(table: str, name: str, column: Column, doing: str) -> None:
    """Mirror mode and marks need a UNIQUE index on a column where only equal bytes are equal: a
    text then names one row, and deleting (or marking, or unmarking) it touches no other (under
    a case-insensitive or PAD SPACE collation `abc` deletes `ABC` and `abc `, which may be
    live)."""
    problems = [] if column.unique else [f"a UNIQUE index on {name}"]
    if not column.exact:
        problems.append(f"a binary, NO PAD collation (it has {column.collation})")
    if problems:
        raise ConfigError(
            f"{doing} {table} needs {' and '.join(problems)}; run `idsync doctor`"
            " for the column to create, or keep orphans (--keep-orphans)"
        )


def changing(job: Job, references: Sequence[Reference]) -> list[Reference]:
    """What the job's mirror would set off in other tables: a foreign key's CASCADE, SET NULL
    or SET DEFAULT and a trigger or rule on deletes; for a soft delete, which changes no key,
    a trigger or rule on updates alone."""
    if job.mark_column is not None:
        return [ref for ref in references if ref.on_delete == TRIGGER]
    return [ref for ref in references if ref.changes_rows]


def refuse_cascades(job: Job, target: Target, allowed: bool) -> None:
    """Refuse (:class:`GuardError`) a mirror that would delete or change rows of other tables
    (:func:`changing`), unless ``allowed``."""
    if allowed:
        return
    found = changing(job, target.references())
    if found:
        doing = f"marking rows of {job.table}" if job.mark_column else f"deleting from {job.table}"
        raise GuardError(
            f"{doing} would delete or change rows of other tables"
            f" ({'; '.join(map(str, found))}); nothing deleted; --allow-cascade to go on anyway"
        )
