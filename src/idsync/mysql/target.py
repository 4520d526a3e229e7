"""MySQL side: what the column can hold, the ids it has, and exact, batched, race-safe inserts."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from types import TracebackType
from typing import Any, TypeVar

import MySQLdb
import MySQLdb.cursors

from idsync.config import Job, MySQLURL, Settings
from idsync.errors import ConfigError, LockHeldError
from idsync.ids import collision, stored_text
from idsync.mysql.catalog import Column as Column  # noqa: PLC0414 (re-exported for its callers)
from idsync.mysql.catalog import describe_column
from idsync.mysql.errors import (
    DATA_ERRORS,
    DENIED,
    LOCK_CONFLICTS,
    lock_failed,
    mysql_error,
)
from idsync.mysql.locks import wait_for_lock

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# A batch that meets a deadlock or a lock wait timeout is sent again, this many times in all.
_BATCH_ATTEMPTS = 3


@dataclass
class BatchResult:
    """What one committed batch did."""

    inserted: int = 0
    """Rows this run added."""
    landed: list[str] = field(default_factory=list)
    """Ids now stored exactly (ours, or a concurrent writer's)."""
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(id, reason) for ids that are not stored exactly."""


_first = itemgetter(0)


def _quote(name: str) -> str:
    # Names were validated as plain identifiers (config.py); quoting guards reserved words.
    return f"`{name}`"


class MySQLTarget:
    """One connection to the target database, scoped to one table and column."""

    def __init__(self, settings: Settings, job: Job) -> None:
        self.url: MySQLURL = settings.mysql
        self.schema = self.url.database
        self.table = job.table
        self.column = job.column
        self._verify_all = False  # set by inspect() when a trigger may rewrite what is sent
        self._read_batch = settings.read_batch_size
        self._settings = settings
        self._conn: Any = None

    def __enter__(self) -> MySQLTarget:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def address(self) -> str:
        return self.url.address

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

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(MySQLdb.Error):
                self._conn.close()
            self._conn = None

    def query(self, sql: str, args: Sequence[object] = (), doing: str = "querying") -> Any:
        """Run one statement and return its rows; errors become idsync errors."""
        return self._query(sql, args, doing)

    def commit(self) -> None:
        try:
            self._conn.commit()
        except MySQLdb.Error as exc:
            raise mysql_error(exc, self.address, "committing") from None

    def _query(self, sql: str, args: Sequence[object] = (), doing: str = "querying") -> Any:
        try:
            cur = self._conn.cursor()
            cur.execute(sql, args)
            rows = cur.fetchall()
        except MySQLdb.Error as exc:
            raise mysql_error(exc, self.address, doing) from None
        return rows

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

    def server_version(self) -> str:
        return str(self._query("SELECT VERSION()")[0][0])

    def table_exists(self) -> bool:
        rows = self._query(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (self.url.database, self.table),
        )
        return bool(rows)

    def inspect(self) -> Column:
        """Read the column's type, size, character set and indexes; refuse what cannot hold ids."""
        where = f"{self.url.database}.{self.table}"
        if not self.table_exists():
            # The catalog hides tables the user may not read: ask the table itself, so that a
            # missing privilege is not mistaken for a missing table.
            self._query(f"SELECT 1 FROM {_quote(self.table)} LIMIT 0", (), f"reading {where}")
            raise ConfigError(f"table {where} does not exist: run `idsync init` to create it")
        column = describe_column(self._query, self.url.database, self.table, self.column)
        # Column names are case-insensitive, lock names are not: `ID` and `id` are one column,
        # so the lock (and a watcher's state key) take the names as the server stores them.
        self.schema, self.table, self.column = column.catalog_names
        self._verify_all = bool(column.triggers)
        return column

    def lock_name(self) -> str:
        """The target's lock: from the names :meth:`inspect` read from the server's catalog."""
        name = f"idsync:{self.schema}.{self.table}.{self.column}"
        if len(name) > 64:  # the server's limit for lock names
            name = "idsync:" + hashlib.sha256(name.encode()).hexdigest()[:48]
        return name

    def lock(self, timeout_s: float, stop: threading.Event | None = None) -> None:
        """Take the target's named lock, or refuse after ``timeout_s`` if another run holds it;
        ``stop`` set meanwhile ends the wait with :class:`~idsync.errors.InterruptedRun`."""
        name = self.lock_name()

        def get_lock(seconds: float) -> object:
            return self._query("SELECT GET_LOCK(%s, %s)", (name, seconds), "taking the lock")[0][0]

        got = wait_for_lock(get_lock, timeout_s, stop, f"the lock {name} on {self.address}")
        if got is None:
            raise lock_failed(self.address, name)
        if not got:
            raise LockHeldError(
                f"another run holds the lock {name} on {self.address} "
                f"(waited {timeout_s:g}s; --lock-timeout sets the wait)"
            )

    def read_id_batches(self) -> Iterator[list[str]]:
        """Every non-null value of the column, a fetch at a time (a server-side cursor)."""
        column = _quote(self.column)
        sql = f"SELECT {column} FROM {_quote(self.table)} WHERE {column} IS NOT NULL"
        try:
            cur = self._conn.cursor(MySQLdb.cursors.SSCursor)
            cur.execute(sql)
            while rows := cur.fetchmany(self._read_batch):
                values = list(map(_first, rows))
                # A column's values are all text or all bytes (binary columns).
                yield [stored_text(v) for v in values] if type(values[0]) is bytes else values
            cur.close()
            self._conn.commit()
        except MySQLdb.Error as exc:
            raise mysql_error(exc, self.address, f"reading {self.table}") from None

    def insert_batch(
        self, ids: Sequence[str], before_commit: Callable[[Any], None] | None = None
    ) -> BatchResult:
        """Insert ``ids`` in one transaction, then prove each one is stored exactly.

        ``before_commit(cursor)``, when given, runs in that same transaction just before it
        commits: a checkpoint written there lands together with the batch or not at all.
        """
        for attempt in range(_BATCH_ATTEMPTS):
            try:
                return self._insert_once(ids, before_commit)
            except MySQLdb.OperationalError as exc:
                # Two writers inserting overlapping keys in different orders can deadlock;
                # the server rolled the whole batch back, so it is safe to send it again.
                if exc.args[0] not in LOCK_CONFLICTS or attempt == _BATCH_ATTEMPTS - 1:
                    raise mysql_error(exc, self.address, f"inserting into {self.table}") from None
                log.warning("batch hit %s; sending it again", exc.args[1])
                self._conn.rollback()
        raise AssertionError("unreachable")

    def _insert_once(
        self, ids: Sequence[str], before_commit: Callable[[Any], None] | None
    ) -> BatchResult:
        result = BatchResult()
        try:
            self._insert_isolating(list(ids), result)
            refused = {text for text, _reason in result.rejected}
            accepted = [i for i in ids if i not in refused] if refused else list(ids)
            if self._verify_all or result.inserted != len(accepted) or self._conn.warning_count():
                self._verify(accepted, result)
                # Rows a trigger rewrote were added, but none of them is an id that was sent.
                result.inserted = min(result.inserted, len(result.landed))
            else:
                result.landed = accepted
            if before_commit is not None:
                before_commit(self._conn.cursor())
            self._conn.commit()
        except MySQLdb.Error as exc:
            if isinstance(exc, MySQLdb.OperationalError) and exc.args[0] in LOCK_CONFLICTS:
                raise
            # Leave no half-done batch on the connection for its next user.
            with contextlib.suppress(MySQLdb.Error):
                self._conn.rollback()
            raise mysql_error(exc, self.address, f"inserting into {self.table}") from None
        return result

    def _insert_isolating(self, ids: list[str], result: BatchResult) -> None:
        """Insert; when the server refuses a value, undo what this call inserted and split the
        batch to find and reject it. One savepoint name serves every level: a level rolls back
        to it before its halves set it again, and never needs it after."""
        if not ids:
            return
        col = _quote(self.column)
        # A no-op update, not INSERT IGNORE: IGNORE would also downgrade "data too long" to a
        # warning and store a truncated id; this way only the duplicate is skipped.
        sql = (
            f"INSERT INTO {_quote(self.table)} ({col}) VALUES (%s)"
            f" ON DUPLICATE KEY UPDATE {col} = {col}"
        )
        cur = self._conn.cursor()
        # executemany sends a large batch as several statements: when a later one is refused,
        # the rows of the earlier ones are in the transaction still. Undo them before the
        # halves are sent again, or they would be stored (and counted) twice.
        cur.execute("SAVEPOINT idsync_isolate")
        try:
            cur.executemany(sql, [(i,) for i in ids])
        except (MySQLdb.DataError, MySQLdb.OperationalError) as exc:
            if exc.args[0] not in DATA_ERRORS:
                raise
            cur.execute("ROLLBACK TO SAVEPOINT idsync_isolate")
            if len(ids) == 1:
                result.rejected.append((ids[0], f"refused by the server: {exc.args[1]}"))
                return
            half = len(ids) // 2
            self._insert_isolating(ids[:half], result)
            self._insert_isolating(ids[half:], result)
            return
        result.inserted += max(cur.rowcount, 0)

    def _verify(self, ids: list[str], result: BatchResult) -> None:
        """Find which ids are stored exactly; name what each of the others collided with."""
        stored = self._stored_exactly(ids)
        for text in ids:
            if text in stored:
                result.landed.append(text)
                continue
            found = self._query(
                f"SELECT {_quote(self.column)} FROM {_quote(self.table)} "
                f"WHERE {_quote(self.column)} = %s LIMIT 1",
                (text,),
            )
            if found:
                result.rejected.append((text, collision(stored_text(found[0][0]))))
            else:
                result.rejected.append(
                    (text, "not stored as sent: the server ignored or rewrote the insert")
                )

    def stored_equal(self, texts: Sequence[str]) -> dict[str, str]:
        """For texts with no exact copy in the column: the stored value each equals under the
        column's collation (``'ABC'`` for ``'abc'`` in a case-insensitive column), if any."""
        found: dict[str, str] = {}
        col, table = _quote(self.column), _quote(self.table)
        doing = "checking ids against the column's collation"
        for start in range(0, len(texts), 1000):
            chunk = list(texts[start : start + 1000])
            marks = ", ".join(["%s"] * len(chunk))
            sql = f"SELECT 1 FROM {table} WHERE {col} IN ({marks}) LIMIT 1"
            if not self._query(sql, chunk, doing):
                continue  # the usual case: one statement says none of them is there
            for text in chunk:
                rows = self._query(
                    f"SELECT {col} FROM {table} WHERE {col} = %s LIMIT 1", [text], doing
                )
                if rows and stored_text(rows[0][0]) != text:
                    found[text] = stored_text(rows[0][0])
        return found

    def collation_keys(self, texts: Sequence[str], column: Column) -> list[bytes]:
        """Each text's sort key under the column's collation (``WEIGHT_STRING``): two texts the
        column takes for equal have equal keys, as ``'x'`` and ``'X'`` under a ``_ci`` one."""
        charset, collation = column.fit.charset, column.collation
        if not charset or not collation:
            return [text.encode() for text in texts]  # a binary column: bytes are the key
        key = f"WEIGHT_STRING(CONVERT(%s USING {charset}) COLLATE {collation})"
        found: list[bytes] = []
        for start in range(0, len(texts), 1000):
            chunk = list(texts[start : start + 1000])
            sql = "SELECT " + ", ".join([key] * len(chunk))
            [row] = self._query(sql, chunk, "asking the column's collation")
            found.extend(bytes(value) for value in row)
        return found

    def _stored_exactly(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        col = _quote(self.column)
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            marks = ", ".join(["%s"] * len(chunk))
            rows = self._query(
                f"SELECT {col} FROM {_quote(self.table)} WHERE {col} IN ({marks})", chunk
            )
            found.update(stored_text(value) for (value,) in rows)
        return found & set(ids)

    def transaction(self, work: Callable[[Any], _T], doing: str) -> _T:
        """Run ``work(cursor)`` in one transaction on this connection and commit it."""
        try:
            result = work(self._conn.cursor())
            self._conn.commit()
        except MySQLdb.Error as exc:
            with contextlib.suppress(MySQLdb.Error):
                self._conn.rollback()
            raise mysql_error(exc, self.address, doing) from None
        return result

    def fetch(
        self, sql: str, args: Sequence[object] = (), doing: str = "querying"
    ) -> list[tuple[Any, ...]]:
        """Every row of one read-only statement; names in ``sql`` must be validated ones."""
        return list(self._query(sql, args, doing))

    def stream(
        self, sql: str, args: Sequence[object] = (), doing: str = "querying"
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of one read-only statement through a server-side cursor, fetched
        ``read_batch_size`` at a time; names in ``sql`` must be validated ones."""
        try:
            cur = self._conn.cursor(MySQLdb.cursors.SSCursor)
            cur.execute(sql, args)
            while rows := cur.fetchmany(self._read_batch):
                yield from rows
            cur.close()
            self._conn.commit()
        except MySQLdb.Error as exc:
            raise mysql_error(exc, self.address, doing) from None
