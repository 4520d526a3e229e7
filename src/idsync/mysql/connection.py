"""One MySQL connection: connect, read, write, stream, transactions; driver errors mapped.

Every statement's failure leaves here as an :class:`~idsync.errors.IdsyncError` of the right kind
(:mod:`idsync.mysql.errors`): the code above never sees the driver.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import MySQLdb
import MySQLdb.cursors

from idsync.config import MySQLURL, Settings
from idsync.errors import IdsyncError
from idsync.mysql.errors import DENIED, mysql_error
from idsync.session import Session


class Connection(Session[MySQLURL]):
    """A connection in strict mode and READ COMMITTED, opened by :meth:`connect`."""

    DRIVER_ERROR = MySQLdb.Error

    def _error(self, exc: Exception, doing: str) -> IdsyncError:
        return mysql_error(exc, self.address, doing)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.mysql)

    def connect(self) -> None:
        url, settings = self.url, self._settings
        extra = {"unix_socket": url.unix_socket} if url.unix_socket else {}
        try:
            self._conn = MySQLdb.connect(
                host=url.host,
                port=url.port,
                user=url.user,
                password=url.password,
                database=url.database,
                charset="utf8mb4",
                autocommit=False,
                connect_timeout=max(1, round(settings.connect_timeout_s)),
                read_timeout=max(1, round(settings.socket_timeout_s)),
                write_timeout=max(1, round(settings.socket_timeout_s)),
                **extra,
            )
            cur = self._conn.cursor()
            # Strict mode turns a value the column cannot hold into an error instead of a
            # silently truncated or replaced row; READ COMMITTED lets the check after an insert
            # see rows that a concurrent run committed.
            cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        except MySQLdb.Error as exc:
            raise mysql_error(exc, self.address, "connecting") from None

    def stream_batches(
        self, sql: str, args: Sequence[object] = (), doing: str = "querying"
    ) -> Iterator[list[tuple[Any, ...]]]:
        """:meth:`stream` a fetch at a time."""
        try:
            cur = self._conn.cursor(MySQLdb.cursors.SSCursor)
            cur.execute(sql, args)
            while rows := cur.fetchmany(self._read_batch):
                yield rows
            cur.close()
            self._conn.commit()
        except MySQLdb.Error as exc:
            raise mysql_error(exc, self.address, doing) from None

    def denied(self, sql: str, passed: frozenset[int] = frozenset()) -> str | None:
        """Try a statement that changes nothing (zero rows, or DDL bound to fail), then roll back:
        the server's privilege refusal, or None when it let the statement through. The server
        checks privileges first, so an error in ``passed`` (one it raises later) also means it
        did; any other error is raised. Unlike the grant tables, this counts roles too."""
        try:
            self._conn.cursor().execute(sql)
        except MySQLdb.Error as exc:
            code = exc.args[0] if exc.args else 0
            if code in DENIED:
                return str(exc.args[1])
            if code not in passed:
                raise mysql_error(exc, self.address, "checking privileges") from None
        finally:
            with contextlib.suppress(MySQLdb.Error):
                self._conn.rollback()
        return None

    @property
    def raw(self) -> Any:
        """The driver's connection, for :mod:`idsync.mysql.writer` only (savepoints, warnings)."""
        return self._conn
