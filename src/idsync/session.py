"""What a SQL server package's connection and writer share, whichever server it speaks to."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from idsync.config import Settings
from idsync.errors import IdsyncError
from idsync.ids import collision
from idsync.target import BatchResult

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

    def fetch(
        self, sql: str, args: Sequence[object] = (), doing: str = "querying"
    ) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def execute(self, sql: str, args: Sequence[object] = (), doing: str = "writing") -> None:
        """One statement that changes something (DDL, an insert); not committed here."""
        self.fetch(sql, args, doing)

    def commit(self) -> None:
        try:
            self._conn.commit()
        except self.DRIVER_ERROR as exc:
            raise self._error(exc, "committing") from None

    def transaction(self, work: Callable[[Any], _T], doing: str) -> _T:
        """Run ``work(cursor)`` in one transaction on this connection and commit it."""
        try:
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
    """Insert ``ids`` with ``send`` (rows added); when the server refuses a value (``refusal``
    gives its words, None for any other error, which is raised), undo what this call inserted
    (``run`` executes the standard savepoint statements) and split the batch in halves to find
    and reject it. One savepoint name serves every level: a level rolls back to it before
    its halves set it again, and never needs it after."""

    def attempt(part: list[str]) -> None:
        if not part:
            return
        run("SAVEPOINT idsync_isolate")
        try:
            added = send(part)
        except Exception as exc:
            reason = refusal(exc)
            if reason is None:
                raise
            run("ROLLBACK TO SAVEPOINT idsync_isolate")
            if len(part) == 1:
                result.rejected.append((part[0], f"refused by the server: {reason}"))
                return
            half = len(part) // 2
            attempt(part[:half])
            attempt(part[half:])
            return
        result.inserted += max(added, 0)

    attempt(ids)
