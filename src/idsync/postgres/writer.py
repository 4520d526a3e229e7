"""Inserting a batch of ids into PostgreSQL exactly: one transaction, a refused value isolated,
the rest proven stored.

A batch is first copied straight into the table (``COPY … FROM STDIN``, under a savepoint): the
ids were missing when the run read the table and it holds the lock, so that is the usual case,
and the fastest way there is (``bench/pg_insert.py``). When the copy fails, because another
writer stored one of the ids meanwhile (or a collation takes one for a stored value) or the
server refuses a value, it is undone and the batch goes the careful way: copied into a
temporary table, then ``INSERT … SELECT … ON CONFLICT DO NOTHING`` from it; a value the server
refuses (too long, an encoding it cannot hold) aborts that statement: the batch is rolled back
to a savepoint and split in halves to find it. When fewer rows were inserted than sent, each id
is checked for an exact stored copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import psycopg

from idsync.postgres import dialect, mirror
from idsync.postgres.connection import Connection
from idsync.postgres.errors import is_data_error, pg_error
from idsync.session import insert_isolating, prove_stored, stored_among
from idsync.target import BatchResult

_UNIQUE_VIOLATION = "23505"


class Writer:
    """Inserts into one column on one connection."""

    def __init__(
        self, conn: Connection, names: tuple[str, str, str | None], verify_all: bool
    ) -> None:
        self.conn, self.verify_all = conn, verify_all
        self.table, self.column, self.mark = names

    def insert(self, ids: Sequence[str]) -> BatchResult:
        """Insert ``ids`` in one transaction, then prove each one is stored exactly; not
        committed here (the caller may add its checkpoint to the same transaction)."""
        result = BatchResult()
        try:
            # Not past what may rewrite or hide a row: COPY ignores rules, and refuses row-level
            # security; such tables take the careful way, every batch verified.
            copied = None if self.verify_all else self._copy_straight(ids)
            if copied is None:
                self._insert_isolating(list(ids), result)
            else:
                result.inserted = copied
            refused = {text for text, _reason in result.rejected}
            accepted = [i for i in ids if i not in refused] if refused else list(ids)
            if self.mark is not None:
                result.restored = self._unmark(accepted)
            if self.verify_all or result.inserted + result.restored != len(accepted):
                self._verify(accepted, result)
                # Rows a trigger rewrote were added, but none of them is an id that was sent.
                result.inserted = min(result.inserted, len(result.landed) - result.restored)
            else:
                result.landed = accepted
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):
                self.conn.raw.rollback()
            raise pg_error(exc, self.conn.address, f"inserting into {self.table}") from None
        return result

    def _unmark(self, ids: list[str]) -> int:
        """Clear the marks of the batch's ids that have one (they came back); how many.

        After the insert, never before: a row a delete batch is marking made the insert wait
        for that batch's end (the unique check waits for it), so this statement's snapshot has
        the mark; one taken before could miss it and leave a live id marked."""
        assert self.mark is not None
        cur = self.conn.raw.cursor()
        cur.execute(mirror.unmark(self.table, self.column, self.mark), (ids,))
        return int(cur.rowcount)

    def _copy_straight(self, ids: Sequence[str]) -> int | None:
        """Rows the copy added, or None when it failed for a reason the careful way handles
        (a conflict, a refused value); nothing of it is left then."""
        cur = self.conn.raw.cursor()
        cur.execute("SAVEPOINT idsync_copy")
        try:
            with cur.copy(dialect.copy_into(self.table, self.column)) as pipe:
                for text in ids:
                    pipe.write_row((text,))
        except psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None) or ""
            if state != _UNIQUE_VIOLATION and not is_data_error(exc):
                raise
            cur.execute("ROLLBACK TO SAVEPOINT idsync_copy")
            return None
        copied = int(cur.rowcount)  # the server's count ("COPY n"), before the next statement
        cur.execute("RELEASE SAVEPOINT idsync_copy")
        return copied

    def _insert_isolating(self, ids: list[str], result: BatchResult) -> None:
        cur = self.conn.raw.cursor()
        sql = dialect.insert_incoming(self.table, self.column)
        cur.execute(dialect.MAKE_INCOMING)

        def send(part: list[str]) -> int:
            # COPY, then one INSERT … SELECT: 1.2x the ids/s of an unnest(text[]) parameter at
            # 100k ids (bench/results/pg_insert.md).
            cur.execute(dialect.EMPTY_INCOMING)
            with cur.copy(dialect.COPY_INCOMING) as pipe:
                for text in part:
                    pipe.write_row((text,))
            cur.execute(sql)
            return int(cur.rowcount)

        def refusal(exc: Exception) -> str | None:
            return str(exc).strip().splitlines()[0] if is_data_error(exc) else None

        insert_isolating(ids, result, send, refusal, cur.execute)

    def _verify(self, ids: list[str], result: BatchResult) -> None:
        def stored_of(chunk: list[str]) -> list[str]:
            sql = dialect.values_of(self.table, self.column, self.mark)
            return [str(value) for (value,) in self.conn.fetch(sql, (chunk,))]

        def equal_to(text: str) -> str | None:
            found = self.conn.fetch(dialect.equal_to(self.table, self.column, self.mark), (text,))
            return str(found[0][0]) if found else None

        prove_stored(ids, stored_among(ids, stored_of), equal_to, result)
