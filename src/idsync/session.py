"""What a SQL server package's connection and writer share, whichever server it speaks to."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from idsync import sqltext
from idsync.config import Settings
from idsync.errors import IdsyncError, TerminalError
from idsync.ids import Summary, collision, prefix_bounds, stored_text
from idsync.target import BatchResult, Column

_CHUNK = 1000


class _Located(Protocol):
    @property
    def database(self) -> str: ...
    @property
    def address(self) -> str: ...


U = TypeVar("U", bound=_Located)
_T = TypeVar("_T")


class Session(Generic[U]):
    """A connection's life and reads: opened by ``connect()``, closed on leaving a ``with``."""

    def __init__(self, settings: Settings, url: U) -> None:
        self.url = url
        self.database = url.database
        self._settings = settings
        self._read_batch = settings.read_batch_size
        self._conn: Any = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def address(self) -> str:
        return self.url.address

    DRIVER_ERROR: type[Exception] = Exception
    """The driver's root error class: what closing may raise, and is ignored."""

    def _guard(self) -> contextlib.AbstractContextManager[object]:
        """Around each call that waits for the server: a driver without a read timeout of its
        own gets one here (PostgreSQL's)."""
        return contextlib.nullcontext()

    def guarded(self) -> contextlib.AbstractContextManager[object]:
        """:meth:`_guard`, for a server package's code that calls its driver directly."""
        return self._guard()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(self.DRIVER_ERROR):
                self._conn.close()
            self._conn = None

    def _error(self, exc: Exception, doing: str) -> IdsyncError:
        """The idsync error (transient, terminal, config) for a driver error met ``doing``."""
        raise NotImplementedError

    def _rollback(self) -> None:
        with contextlib.suppress(self.DRIVER_ERROR):
            self._conn.rollback()

    def _after_error(self) -> None:
        """What the session needs after a failed statement (PostgreSQL: a rollback)."""

    def fetch(
        self, sql: str, args: Sequence[object] = (), doing: str = "querying"
    ) -> list[tuple[Any, ...]]:
        """Every row of one statement (none for one that returns none); names in ``sql`` must
        be validated ones."""
        try:
            with self._guard():
                cur = self._conn.cursor()
                cur.execute(sql, args)
                return list(cur.fetchall()) if cur.description else []
        except self.DRIVER_ERROR as exc:
            self._after_error()
            raise self._error(exc, doing) from None

    def execute(self, sql: str, args: Sequence[object] = (), doing: str = "writing") -> None:
        """One statement that changes something (DDL, an insert); not committed here."""
        self.fetch(sql, args, doing)

    def commit(self) -> None:
        try:
            with self._guard():
                self._conn.commit()
        except self.DRIVER_ERROR as exc:
            raise self._error(exc, "committing") from None

    def transaction(self, work: Callable[[Any], _T], doing: str) -> _T:
        """Run ``work(cursor)`` in one transaction on this connection and commit it."""
        try:
            with self._guard():
                result = work(self._conn.cursor())
                self._conn.commit()
        except self.DRIVER_ERROR as exc:
            self._rollback()
            raise self._error(exc, doing) from None
        return result

    def stream_batches(
        self, sql: str, args: Sequence[object] = (), doing: str = "querying"
    ) -> Iterator[list[tuple[Any, ...]]]:
        raise NotImplementedError

    def stream(
        self, sql: str, args: Sequence[object] = (), doing: str = "querying"
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of one read-only statement through a server-side cursor, fetched
        ``read_batch_size`` at a time."""
        for rows in self.stream_batches(sql, args, doing):
            yield from rows


def stored_among(ids: list[str], stored_of: Callable[[list[str]], list[str]]) -> set[str]:
    """Which ``ids`` are stored exactly: ``stored_of(chunk)`` gives the stored values equal to
    any of a chunk under the column's collation; only byte-equal ones count."""
    found: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        found.update(stored_of(ids[start : start + _CHUNK]))
    return found & set(ids)


def prove_stored(
    ids: list[str], stored: set[str], equal_to: Callable[[str], str | None], result: BatchResult
) -> None:
    """Land the ids stored exactly; reject the others, naming the stored value each equals under
    the collation (``equal_to``), or saying the server ignored or rewrote the insert."""
    for text in ids:
        if text in stored:
            result.landed.append(text)
            continue
        other = equal_to(text)
        if other is not None:
            result.rejected.append((text, collision(other)))
        else:
            result.rejected.append(
                (text, "not stored as sent: the server ignored or rewrote the insert")
            )


def insert_isolating(
    ids: list[str],
    result: BatchResult,
    send: Callable[[list[str]], int],
    refusal: Callable[[Exception], str | None],
    run: Callable[[str], object],
) -> None:
    """Insert ``ids`` with ``send`` (rows added), a value the server refuses rejected with its
    words (:func:`isolating`)."""
    added, refused = isolating(ids, send, refusal, run)
    result.inserted += added
    result.rejected += [(text, f"refused by the server: {reason}") for text, reason in refused]


def isolating(
    ids: list[str],
    send: Callable[[list[str]], int],
    refusal: Callable[[Exception], str | None],
    run: Callable[[str], object],
) -> tuple[int, list[tuple[str, str]]]:
    """Write ``ids`` with ``send`` (rows it changed); when the server refuses one (``refusal``
    gives its words, None for any other error, which is raised), undo what this call wrote
    (``run`` executes the standard savepoint statements) and split the batch in halves to find
    it. Returns the rows changed and each refused id with the server's words. One savepoint
    name serves every level: a level rolls back to it before its halves set it again, and never
    needs it after."""
    changed, refused = 0, []

    def attempt(part: list[str]) -> None:
        nonlocal changed
        if not part:
            return
        run("SAVEPOINT idsync_isolate")
        try:
            changed += max(send(part), 0)
        except Exception as exc:
            reason = refusal(exc)
            if reason is None:
                raise
            run("ROLLBACK TO SAVEPOINT idsync_isolate")
            if len(part) == 1:
                refused.append((part[0], reason))
                return
            half = len(part) // 2
            attempt(part[:half])
            attempt(part[half:])

    attempt(ids)
    return changed, refused


class BucketSQL(Protocol):
    """What a server package's dialect builds for :class:`SqlBuckets`."""

    def relation(self, name: str) -> str: ...
    def value(self, column: str) -> str: ...
    def oid_shaped(self, column: str, binary: bool) -> str: ...
    def checksum(self, column: str, prime: int) -> str: ...
    def unmarked(self, mark: str | None) -> str: ...


def shown(value: str | bytes) -> str:
    """A value read back as text for display and prefixes (bytes of a binary column decoded)."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


class SqlBuckets:
    """The target's values shaped like an ObjectId's text, summarised and read per bucket.

    Ranges are written as hex text (``c >= '65a0…0' AND c < '65a1…0'``) in the column's own
    collation, so that the column's index finds them. Lowercase hex sorts the same under binary
    and the usual collations (``_bin``, ``general_ci``, ``unicode_ci``, ``0900``, ``uca1400``),
    but not under every one (a collation that contracts ``aa``, say):
    the target's ``sorts_hex_as_bytes`` says which, and the check reads the column whole
    otherwise. The SQL comes from the server package's dialect (:class:`BucketSQL`).
    """

    def __init__(
        self,
        conn: Session[Any],
        sql: BucketSQL,
        names: tuple[str, str, str | None],
        column: Column,
        moduli: tuple[int, int],
    ) -> None:
        self.conn, self.sql, self.moduli = conn, sql, moduli
        self.table, self.column, mark = names
        self.quoted, self.col = sql.relation(self.table), sql.value(self.column)
        self.live = sql.unmarked(mark)
        self.shape = sql.oid_shaped(self.column, binary=not column.fit.charset)
        self.shaped = self.shape + self.live
        """Shaped like an ObjectId's text, and not marked."""
        self.ids_read = 0
        """Values read (summaries are not ids)."""
        self.count_s = 0.0
        """Time the server took to summarise."""

    def probe(self) -> str | None:
        """None when the server runs the bucket queries; else what it said."""
        try:
            sql = sqltext.select_where(self.quoted, self.col, self.shaped)
            self.conn.fetch(f"{sql} LIMIT 1")
        except TerminalError as exc:
            return str(exc)
        return None

    def _where(self, prefix: str) -> tuple[str, list[object]]:
        if not prefix:
            return self.shaped, []
        low, high = prefix_bounds(prefix)
        bounds: list[object] = [low] if high is None else [low, high]
        return f"{sqltext.in_range(self.col, True, high is not None)} AND {self.shaped}", bounds

    def summaries(self, prefix: str, length: int) -> dict[str, Summary]:
        where, args = self._where(prefix)
        sums = [self.sql.checksum(self.column, prime) for prime in self.moduli]
        started = time.perf_counter()
        rows = self.conn.fetch(
            sqltext.summaries(self.quoted, self.col, where, length, sums),
            args,
            f"counting {self.table} per bucket",
        )
        self.count_s += time.perf_counter() - started
        return {shown(key): Summary(*map(int, figures)) for key, *figures in rows}

    def ids(self, prefix: str) -> Iterator[str]:
        where, args = self._where(prefix)
        sql = sqltext.select_where(self.quoted, self.col, where)
        for (value,) in self.conn.stream(sql, args, f"reading {self.table}"):
            self.ids_read += 1
            yield stored_text(value)

    def others(self) -> Iterator[str]:
        """Every value not shaped like an ObjectId's text."""
        where = f"{self.col} IS NOT NULL AND NOT ({self.shape}){self.live}"
        sql = sqltext.select_where(self.quoted, self.col, where)
        for (value,) in self.conn.stream(sql, (), f"reading {self.table}"):
            self.ids_read += 1
            yield stored_text(value)
