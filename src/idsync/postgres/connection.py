"""A PostgreSQL session through psycopg 3, with errors classified by SQLSTATE.

Unlike MySQL, an error aborts the whole transaction: every failed statement is followed by a
rollback here, so that the session can go on (the batch it belonged to is redone or rejected by
the caller).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from idsync.config import Settings
from idsync.errors import IdsyncError
from idsync.postgres.errors import pg_error
from idsync.postgres.watchdog import Watchdog, cursor_class
from idsync.session import Session
from idsync.urls import PostgresURL


def application_name(host: str | None = None, pid: int | None = None) -> str:
    """``idsync host=<name> pid=<pid>``: ASCII (the server turns the rest into ``?``) and at
    most 63 bytes (the server cuts longer names): a long host name is shortened, never the pid
    that a lock's waiter names."""
    host = (host or socket.gethostname()).encode("ascii", "replace").decode()
    tail = f" pid={pid if pid is not None else os.getpid()}"
    return f"idsync host={host}"[: 63 - len(tail)] + tail


class Connection(Session[PostgresURL]):
    """A connection in READ COMMITTED (PostgreSQL's default), opened by :meth:`connect`."""

    DRIVER_ERROR = psycopg.Error

    def _error(self, exc: Exception, doing: str) -> IdsyncError:
        return pg_error(exc, self.address, doing)

    def _after_error(self) -> None:
        # An error aborts the whole transaction: nothing more runs on it until it ends.
        self._rollback()

    def __init__(self, settings: Settings, url: PostgresURL, schema: str = "public") -> None:
        super().__init__(settings, url)
        self.schema = schema
        self._dog = Watchdog(settings.socket_timeout_s + _MARGIN_S)

    def connect(self) -> None:
        url, settings = self.url, self._settings
        timeout_ms = max(1000, round(settings.socket_timeout_s * 1000))
        extra: dict[str, Any] = {"sslmode": url.sslmode} if url.sslmode else {}
        try:
            self._conn = psycopg.connect(
                host=url.socket_dir or url.host,
                port=url.port,
                user=url.user,
                password=url.password,
                dbname=url.database,
                connect_timeout=max(1, round(settings.connect_timeout_s)),
                # Who a lock's holder is, for a run that waits on it (and for the DBA).
                application_name=application_name(),
                # Texts as UTF-8 whatever the database's encoding (SQL_ASCII would give bytes).
                client_encoding="UTF8",
                # The longest one statement may run: the counterpart of MySQL's read timeout.
                # The schema alone on the path: the user's own search_path (its "$user" first)
                # never decides which table is read or written. Names are plain (config.py).
                options=f'-c statement_timeout={timeout_ms} -c search_path="{self.schema}"',
                autocommit=False,
                cursor_factory=cursor_class(self._dog),
                **extra,
            )
        except psycopg.Error as exc:
            raise pg_error(exc, self.address, "connecting") from None
        # Whatever the server's default: the exact inserts and deletes reason statement by
        # statement (each sees what committed before it), as on MySQL (its session is set so).
        self._conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED

    def _guard(self) -> contextlib.AbstractContextManager[object]:
        return self._dog.armed(self._conn)

    def close(self) -> None:
        super().close()
        self._dog.close()

    def _rollback(self) -> None:
        # After an error the link may be the one gone silent: the rollback waits no longer.
        with self._guard(), contextlib.suppress(psycopg.Error):
            self._conn.rollback()

    def stream_batches(
        self, sql: str, args: Sequence[object] = (), doing: str = "querying"
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of one read-only statement through a server-side (named) cursor, fetched
        ``read_batch_size`` at a time."""
        try:
            with self._conn.cursor(name="idsync_read") as cur:
                with self._guard():
                    cur.execute(sql, args)
                while True:
                    with self._guard():
                        rows = cur.fetchmany(self._read_batch)
                    if not rows:
                        break
                    yield rows
            with self._guard():
                self._conn.commit()
        except psycopg.Error as exc:
            self._rollback()
            raise pg_error(exc, self.address, doing) from None

    def denied(self, sql: str, passed: frozenset[str] = frozenset()) -> str | None:
        """Try a statement that changes nothing, then roll back: the server's privilege refusal
        (SQLSTATE 42501), or None when it let the statement through (or refused it for a reason
        in ``passed``, which it checks after the privileges)."""
        try:
            self._conn.cursor().execute(sql)
        except psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None)
            if state == "42501":
                return str(exc).strip().splitlines()[0]
            if state not in passed:
                raise pg_error(exc, self.address, "checking privileges") from None
        finally:
            self._rollback()
        return None

    @property
    def raw(self) -> Any:
        """The driver's connection, for :mod:`idsync.postgres.writer` only (savepoints)."""
        return self._conn


# After the server's own statement_timeout (the socket timeout): its error comes first whenever
# the link carries it.
_MARGIN_S = 2.0
