"""A read timeout for libpq, which has none: the socket shut once one statement outlasts it.

Over a link gone silent (no reply, no reset) the server's statement_timeout is never heard, so
a wait would last as long as the silence. A block of work on the connection is *armed*; every
statement it starts (a cursor's execute or copy) moves the deadline to that statement's start
plus the timeout; when a deadline passes, the socket is shut down and the statement's wait ends
with the driver's error for a lost connection. One thread per connection, sleeping until the
next deadline: no timer per statement.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg


class Watchdog:
    """Shuts one connection's socket when an armed block's current statement runs too long."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._depth = 0
        self._fd = -1
        self._closed = False
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def armed(self, conn: Any) -> Iterator[None]:
        """While the block runs, no statement of it may outlast the timeout."""
        with self._cond:
            if self._depth == 0:
                self._fd = _socket(conn)
                self._deadline = time.monotonic() + self.seconds
            self._depth += 1
            self._start()
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._deadline = None

    def statement(self) -> None:
        """A statement starts: the timeout counts from now (in an armed block)."""
        with self._cond:
            if self._deadline is not None:
                self._deadline = time.monotonic() + self.seconds
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="idsync-pg-watchdog")
            self._thread.daemon = True
            self._thread.start()

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                _shut(self._fd)
                self._deadline = None


def cursor_class(dog: Watchdog) -> type[psycopg.Cursor[Any]]:
    """Cursors whose every statement tells ``dog`` it starts."""

    class TimedCursor(psycopg.Cursor[Any]):
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            dog.statement()
            return super().execute(*args, **kwargs)

        def executemany(self, *args: Any, **kwargs: Any) -> Any:
            dog.statement()
            return super().executemany(*args, **kwargs)

        def copy(self, *args: Any, **kwargs: Any) -> Any:
            dog.statement()
            return super().copy(*args, **kwargs)

    return TimedCursor


def _socket(conn: Any) -> int:
    """The connection's socket; -1 for one closed or lost (its calls fail by themselves)."""
    try:
        return int(conn.pgconn.socket) if conn is not None else -1
    except psycopg.Error:
        return -1


def _shut(fd: int) -> None:
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)
