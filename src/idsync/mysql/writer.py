"""Inserting a batch of ids exactly: one transaction, a refused value isolated, the rest proven.

- a row another writer inserted is a no-op, never an error (:func:`~idsync.mysql.dialect.upsert`);
- a value the column cannot hold is an error in strict mode, never a truncated row: the batch is
  undone to a savepoint and split in halves to find the culprit, rejected with the server's words;
- when fewer rows were inserted than sent (or a trigger may rewrite what is sent), each id is
  checked for an exact stored copy; those without one collided with another value under the
  column's collation, and are rejected naming it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import MySQLdb

from idsync.ids import stored_text
from idsync.mysql import dialect, mirror
from idsync.mysql.connection import Connection
from idsync.mysql.errors import DATA_ERRORS, LOCK_CONFLICTS, mysql_error
from idsync.session import insert_isolating, prove_stored, stored_among
from idsync.target import BatchResult

log = logging.getLogger(__name__)

# A batch that meets a deadlock or a lock wait timeout is sent again, this many times in all.
_BATCH_ATTEMPTS = 3
_CHUNK = 1000  # texts per statement that clears marks


class Writer:
    """Inserts into one column on one connection."""

    def __init__(
        self, conn: Connection, names: tuple[str, str, str | None], verify_all: bool
    ) -> None:
        self.conn, self.verify_all = conn, verify_all
        self.table, self.column, self.mark = names

    def insert(
        self, ids: Sequence[str], before_commit: Callable[[Any], None] | None = None
    ) -> BatchResult:
        """Insert ``ids`` in one transaction, then prove each one is stored exactly.
        ``before_commit(cursor)`` runs in that transaction just before it commits."""
        for attempt in range(_BATCH_ATTEMPTS):
            try:
                return self._insert_once(ids, before_commit)
            except MySQLdb.OperationalError as exc:
                # Two writers inserting overlapping keys in different orders can deadlock;
                # the server rolled the whole batch back, so it is safe to send it again.
                if exc.args[0] not in LOCK_CONFLICTS or attempt == _BATCH_ATTEMPTS - 1:
                    raise self._error(exc) from None
                log.warning("batch hit %s; sending it again", exc.args[1])
                self.conn.raw.rollback()
        raise AssertionError("unreachable")

    def _error(self, exc: Exception) -> Exception:
        return mysql_error(exc, self.conn.address, f"inserting into {self.table}")

    def _insert_once(
        self, ids: Sequence[str], before_commit: Callable[[Any], None] | None
    ) -> BatchResult:
        raw, result = self.conn.raw, BatchResult()
        try:
            self._insert_isolating(list(ids), result)
            refused = {text for text, _reason in result.rejected}
            accepted = [i for i in ids if i not in refused] if refused else list(ids)
            if self.mark is not None:
                result.restored = self._unmark(accepted)
            added = result.inserted + result.restored
            if self.verify_all or added != len(accepted) or raw.warning_count():
                self._verify(accepted, result)
                # Rows a trigger rewrote were added, but none of them is an id that was sent.
                result.inserted = min(result.inserted, len(result.landed) - result.restored)
            else:
                result.landed = accepted
            if before_commit is not None:
                before_commit(raw.cursor())
            raw.commit()
        except MySQLdb.Error as exc:
            if isinstance(exc, MySQLdb.OperationalError) and exc.args[0] in LOCK_CONFLICTS:
                raise
            # Leave no half-done batch on the connection for its next user.
            with contextlib.suppress(MySQLdb.Error):
                raw.rollback()
            raise self._error(exc) from None
        return result

    def _unmark(self, ids: Sequence[str]) -> int:
        """Clear the marks of the batch's ids that have one (they came back); how many.

        After the insert, never before: a row a delete batch is marking made the upsert wait
        for that batch's end, so this statement reads its mark; one before, under READ
        COMMITTED, may skip a locked row by its last committed (unmarked) version."""
        assert self.mark is not None
        cur, restored = self.conn.raw.cursor(), 0
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            cur.execute(mirror.unmark(self.table, self.column, self.mark, len(chunk)), chunk)
            restored += int(cur.rowcount)
        return restored

    def _insert_isolating(self, ids: list[str], result: BatchResult) -> None:
        cur = self.conn.raw.cursor()
        sql = dialect.upsert(self.table, self.column)

        def send(part: list[str]) -> int:
            # executemany sends a large batch as several statements: when a later one is
            # refused, the rows of the earlier ones are in the transaction still, and the
            # savepoint undoes them before the halves are sent again.
            cur.executemany(sql, [(i,) for i in part])
            return int(cur.rowcount)

        def refusal(exc: Exception) -> str | None:
            data = isinstance(exc, MySQLdb.DataError | MySQLdb.OperationalError)
            return str(exc.args[1]) if data and exc.args[0] in DATA_ERRORS else None

        insert_isolating(ids, result, send, refusal, cur.execute)

    def _verify(self, ids: list[str], result: BatchResult) -> None:
        """Find which ids are stored exactly; name what each of the others collided with."""

        def stored_of(chunk: list[str]) -> list[str]:
            sql = dialect.values_of(self.table, self.column, len(chunk), self.mark)
            return [stored_text(value) for (value,) in self.conn.fetch(sql, chunk)]

        def equal_to(text: str) -> str | None:
            found = self.conn.fetch(dialect.equal_to(self.table, self.column, self.mark), (text,))
            return stored_text(found[0][0]) if found else None

        prove_stored(ids, stored_among(ids, stored_of), equal_to, result)
