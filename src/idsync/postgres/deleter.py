"""Deleting orphans from a PostgreSQL column exactly (:mod:`idsync.deleting`)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence

import psycopg

from idsync.deleting import DeleteSteps, delete_exactly
from idsync.postgres import mirror
from idsync.postgres.connection import Connection
from idsync.postgres.errors import pg_error
from idsync.target import DeleteResult

_FOREIGN_KEY_VIOLATION = "23503"
# 'update or delete on table "t" violates foreign key constraint "fk" on table "child"'
_CHILD = re.compile(r'constraint "([^"]*)" on table "([^"]*)"')


def delete_orphans(
    conn: Connection,
    names: tuple[str, str],
    texts: Sequence[str],
    live: Callable[[list[str]], set[str]],
    marking: tuple[str, str] | None = None,
) -> DeleteResult:
    """One committed transaction deleting the rows of ``texts`` the source does not have; or,
    given ``marking`` (the mark column, what sets it to now), marking them."""
    (relation, column), mark = names, None if marking is None else marking[0]
    raw = conn.raw
    cur = raw.cursor()

    def run(sql: str, args: Sequence[object] = ()) -> None:
        with conn.guarded():  # the source's lookups between two statements are not timed here
            cur.execute(sql, args)

    def lock(values: list[str]) -> list[str]:
        # A deferred foreign key would refuse at the commit, the whole batch at once: checked
        # at each statement instead, so that a referenced row is found and kept.
        run("SET CONSTRAINTS ALL IMMEDIATE")
        run(mirror.lock_values(relation, column, mark), (values,))
        return [str(value) for (value,) in cur.fetchall()]

    def send(part: list[str]) -> int:
        if marking is None:
            run(mirror.delete_values(relation, column), (part,))
        else:
            run(mirror.mark_values(relation, column, marking), (part,))
        return int(cur.rowcount)

    def commit() -> None:
        with conn.guarded():
            raw.commit()

    def rollback() -> None:
        with conn.guarded(), contextlib.suppress(psycopg.Error):
            raw.rollback()

    steps = DeleteSteps(lock, send, _referenced_by, run, commit, rollback)
    try:
        commit()  # what the connection read before is not this transaction's
        return delete_exactly(texts, live, steps)
    except psycopg.Error as exc:
        raise pg_error(exc, conn.address, f"deleting from {relation}") from None


def _referenced_by(exc: Exception) -> str | None:
    if getattr(exc, "sqlstate", None) != _FOREIGN_KEY_VIOLATION:
        return None
    found = _CHILD.search(str(exc))
    if found is None:
        return f"referenced: {str(exc).strip().splitlines()[0]}"
    return f"referenced by {found.group(2)} (constraint {found.group(1)})"
