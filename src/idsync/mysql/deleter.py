"""Deleting orphans from a MySQL column exactly (:mod:`idsync.deleting`)."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence

import MySQLdb

from idsync.deleting import DeleteSteps, delete_exactly
from idsync.ids import stored_text
from idsync.mysql import mirror
from idsync.mysql.connection import Connection
from idsync.mysql.errors import LOCK_CONFLICTS, mysql_error
from idsync.target import DeleteResult

_REFERENCED = {1451, 1217}  # ER_ROW_IS_REFERENCED_2, ER_ROW_IS_REFERENCED
# "… a foreign key constraint fails (`db`.`child`, CONSTRAINT `fk` FOREIGN KEY (`col`) …"
_CHILD = re.compile(r"fails \((`[^`]*`\.`[^`]*`), CONSTRAINT `[^`]*` FOREIGN KEY \(([^)]*)\)")
_CHUNK = 1000
_ATTEMPTS = 3  # tries of a batch that meets a deadlock or a lock wait timeout

log = logging.getLogger(__name__)


def delete_orphans(
    conn: Connection,
    names: tuple[str, str],
    texts: Sequence[str],
    live: Callable[[list[str]], set[str]],
    marking: tuple[str, str] | None = None,
) -> DeleteResult:
    """One committed transaction deleting the rows of ``texts`` the source does not have; or,
    given ``marking`` (the mark column, what sets it to now), marking them."""
    (table, column), mark = names, None if marking is None else marking[0]
    raw = conn.raw
    cur = raw.cursor()

    def lock(chunk_of: list[str]) -> list[str]:
        found: list[str] = []
        for start in range(0, len(chunk_of), _CHUNK):
            chunk = chunk_of[start : start + _CHUNK]
            cur.execute(mirror.lock_values(table, column, len(chunk), mark), chunk)
            found += [stored_text(value) for (value,) in cur.fetchall()]
        return found

    def send(part: list[str]) -> int:
        if marking is None:
            cur.execute(mirror.delete_values(table, column, len(part)), part)
        else:
            cur.execute(mirror.mark_values(table, column, marking, len(part)), part)
        return int(cur.rowcount)

    def rollback() -> None:
        with contextlib.suppress(MySQLdb.Error):
            raw.rollback()

    steps = DeleteSteps(lock, send, _referenced_by, cur.execute, raw.commit, rollback)
    for attempt in range(_ATTEMPTS):
        try:
            raw.commit()  # what the connection read before is not this transaction's
            return delete_exactly(texts, live, steps)
        except MySQLdb.OperationalError as exc:
            # A writer storing these ids meanwhile may deadlock with the batch's locks: the
            # server rolled it back whole, so it is sent again, as an insert batch is.
            if exc.args[0] not in LOCK_CONFLICTS or attempt == _ATTEMPTS - 1:
                raise mysql_error(exc, conn.address, f"deleting from {table}") from None
            log.warning("delete batch hit %s; sending it again", exc.args[1])
        except MySQLdb.Error as exc:
            raise mysql_error(exc, conn.address, f"deleting from {table}") from None
    raise AssertionError("unreachable")


def _referenced_by(exc: Exception) -> str | None:
    if not isinstance(exc, MySQLdb.IntegrityError | MySQLdb.OperationalError):
        return None
    if not exc.args or exc.args[0] not in _REFERENCED:
        return None
    found = _CHILD.search(str(exc.args[1]))
    if found is None:
        return f"referenced: {exc.args[1]}"
    child = found.group(1).replace("`", "")
    columns = found.group(2).replace("`", "")
    return f"referenced by {child}({columns})"
