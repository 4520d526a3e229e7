"""MySQL as idsync's :class:`~idsync.target.Target`: one connection, one table and column.

The parts do the work (:mod:`connection`, :mod:`catalog`, :mod:`writer`, :mod:`buckets`,
:mod:`probes`, the owned tables :mod:`history` and :mod:`state`); this class holds what they
share (the connection, the names as the server spells them) and is what the features get.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from idsync.config import Job, Settings
from idsync.errors import ConfigError, IdsyncError, LockHeldError
from idsync.ids import stored_text
from idsync.ledger import Ledger
from idsync.locks import held_by, wait_for_lock
from idsync.mirroring import require_exact_unique
from idsync.mysql import buckets, catalog, deleter, dialect, history, mirror, schema, state
from idsync.mysql.connection import Connection
from idsync.mysql.errors import lock_failed
from idsync.mysql.probes import MySQLProbes
from idsync.mysql.writer import Writer
from idsync.runs import RunRecord
from idsync.session import SqlBuckets, stored_among
from idsync.target import (
    RUNS_TABLE,
    TRIGGER,
    BatchResult,
    Checkpoint,
    Column,
    DeleteResult,
    Reference,
)

_first = itemgetter(0)


class MySQLTarget(Connection):
    """One connection to the target database, scoped to one job's table and column."""

    def __init__(self, settings: Settings, job: Job) -> None:
        super().__init__(settings)
        if "." in job.table:
            raise ConfigError(
                f"table {job.table!r} names a schema: on MySQL the URL names the database;"
                " give the table alone"
            )
        self.job = job.name
        self.table = job.table
        self.column = job.column
        self.mark = job.mark_column
        self._mark_time = ""  # what sets the mark to now: from inspect(), as the column's type
        self._verify_all = False  # set by inspect() when a trigger may rewrite what is sent
        self._state_key = state.target_key(job.table, job.column)

    def table_exists(self) -> bool:
        return bool(self.fetch(dialect.TABLE_EXISTS, (self.url.database, self.table)))

    def inspect(self) -> Column:
        """Read the column's type, size, character set and indexes; refuse what cannot hold ids."""
        where = f"{self.url.database}.{self.table}"
        if not self.table_exists():
            # The catalog hides tables the user may not read: ask the table itself, so that a
            # missing privilege is not mistaken for a missing table.
            self.fetch(dialect.nothing_from(self.table), (), f"reading {where}")
            raise ConfigError(f"table {where} does not exist: run `idsync init` to create it")
        column = catalog.describe_column(self.fetch, self.url.database, self.table, self.column)
        # Column names are case-insensitive, lock names are not: `ID` and `id` are one column,
        # so the lock (and a watcher's state key) take the names as the server stores them.
        self.database, self.table, self.column = column.catalog_names
        self._state_key = state.target_key(self.table, self.column)
        self._verify_all = bool(column.triggers)
        if self.mark is not None:
            require_exact_unique(self.table, self.column, column, "marking orphans in")
            self._mark_time = catalog.mark_time(self.fetch, self.database, self.table, self.mark)
        return column

    @property
    def shown_table(self) -> str:
        return f"{self.database}.{self.table}"

    def ledger(self, key: str) -> Ledger:
        return Ledger(self, dialect.LEDGER, key)

    def read_between(self, low: str, high: str) -> set[str]:
        sql = dialect.select_between(self.table, self.column, self.mark)
        rows = self.fetch(sql, (low, high), f"reading {self.table}")
        self.commit()  # no transaction held between ranges
        return {stored_text(v) for (v,) in rows}

    def lock_name(self) -> str:
        """The target's lock: from the names :meth:`inspect` read from the server's catalog."""
        return dialect.run_lock_name(self.database, self.table, self.column)

    def lock(self, timeout_s: float, stop: threading.Event | None = None) -> None:
        """Take the target's named lock, or refuse after ``timeout_s`` if another run holds it;
        ``stop`` set meanwhile ends the wait with :class:`~idsync.errors.InterruptedRun`."""
        name = self.lock_name()

        def get_lock(seconds: float) -> object:
            return self.fetch(dialect.GET_LOCK, (name, seconds), "taking the lock")[0][0]

        what, holder = f"the lock {name} on {self.address}", lambda: self._holder(name)
        got = wait_for_lock(get_lock, timeout_s, stop, what, holder, job=self.job)
        self._held(got, name, f"another run holds {what} ({held_by(self._holder(name))}waited "
                   f"{timeout_s:g}s; --lock-timeout sets the wait)")  # fmt: skip

    def read_id_batches(self) -> Iterator[list[str]]:
        """Every non-null value of the column, a fetch at a time (a server-side cursor)."""
        sql = dialect.select_column(self.table, self.column, self.mark)
        for rows in self.stream_batches(sql, (), f"reading {self.table}"):
            values = list(map(_first, rows))
            # A column's values are all text or all bytes (binary columns).
            yield [stored_text(v) for v in values] if type(values[0]) is bytes else values

    def count_values(self) -> int:
        sql = dialect.count_values(self.table, self.column, self.mark)
        return int(self.fetch(sql, (), f"counting {self.table}")[0][0])

    def estimated_rows(self) -> int | None:
        """The server's estimate of the table's rows (InnoDB's statistics: rough, and free)."""
        rows = self.fetch(dialect.ESTIMATED_ROWS, (self.database, self.table))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def read_ordered_batches(self, size: int) -> Iterator[list[str]]:
        """Every non-null value of the column in its collation's order, ``size`` at a time,
        each page a query of its own (nothing held open between pages)."""
        after: object = None
        while True:
            sql = dialect.select_page(self.table, self.column, after is not None, self.mark)
            args = (size,) if after is None else (after, size)
            values = list(map(_first, self.fetch(sql, args, f"reading {self.table}")))
            if not values:
                return
            after = values[-1]
            yield [stored_text(v) for v in values] if type(after) is bytes else values
            if len(values) < size:
                return

    def insert_batch(self, ids: Sequence[str], checkpoint: Checkpoint | None = None) -> BatchResult:
        """Insert ``ids`` in one transaction, then prove each one is stored exactly; a
        ``checkpoint`` is saved in that same transaction: it lands with the batch or not at all."""
        writer = Writer(self, (self.table, self.column, self.mark), self._verify_all)
        if checkpoint is None:
            return writer.insert(ids)
        return writer.insert(ids, lambda cursor: self._save(cursor, checkpoint))

    def present(self, texts: Sequence[str]) -> set[str]:
        def stored_of(chunk: list[str]) -> list[str]:
            sql = dialect.values_of(self.table, self.column, len(chunk), self.mark)
            return [stored_text(v) for (v,) in self.fetch(sql, chunk, f"reading {self.table}")]

        return stored_among(list(texts), stored_of)

    def references(self) -> tuple[Reference, ...]:
        where = (self.database, self.table)
        rows = self.fetch(mirror.REFERENCES, where, "reading foreign keys")
        event = "DELETE" if self.mark is None else "UPDATE"  # what the mirror does to a row
        triggers = self.fetch(mirror.EVENT_TRIGGERS, (*where, event), "reading triggers")
        self.commit()
        return tuple(
            Reference(str(name), str(child), tuple(str(columns).split(",")), str(rule))
            for name, child, columns, rule in rows
        ) + tuple(
            Reference(str(name), f"trigger {name}", (), TRIGGER, event) for (name,) in triggers
        )

    def delete_orphans(
        self, texts: Sequence[str], live: Callable[[list[str]], set[str]]
    ) -> DeleteResult:
        marking = None if self.mark is None else (self.mark, self._mark_time)
        return deleter.delete_orphans(self, (self.table, self.column), texts, live, marking)

    def stored_equal(self, texts: Sequence[str]) -> dict[str, str]:
        return catalog.stored_equal(self, self.table, self.column, texts)

    def collation_keys(self, texts: Sequence[str], column: Column) -> list[bytes]:
        return catalog.collation_keys(self, texts, column)

    def sorts_hex_as_bytes(self, column: Column) -> bool:
        return buckets.sorts_hex_as_bytes(self, column)

    def bytes_sent(self) -> int | None:
        return buckets.bytes_sent(self)

    def buckets(self, column: Column, moduli: tuple[int, int]) -> SqlBuckets:
        return SqlBuckets(self, dialect, (self.table, self.column, self.mark), column, moduli)

    @property
    def probes(self) -> MySQLProbes:
        return MySQLProbes(self, self.table, self.column, self.mark)

    # --- a watcher's lock and checkpoint -------------------------------------------------------

    def claim_watch(self, timeout_s: float, stop: threading.Event) -> Checkpoint | None:
        """Create the state table if missing, take the lock that allows one watcher per job and
        target, and read its checkpoint; :class:`LockHeldError` if another watcher holds it."""
        lock = dialect.watch_lock_name(self.database, self._state_key, self.job)

        def prepare(cursor: Any) -> tuple[bool | None, Checkpoint | None]:
            state.create_table(cursor)
            got = wait_for_lock(
                lambda seconds: state.take_lock(cursor, lock, seconds),
                timeout_s,
                stop,
                f"the lock {lock} on {self.address}",
                lambda: self._holder(lock),
                job=self.job,
            )
            if not got:
                return got, None
            return True, state.load(cursor, self.job, self._state_key)

        locked, checkpoint = self.transaction(prepare, f"preparing {state.STATE_TABLE}")
        by = held_by(self._holder(lock))
        self._held(locked, lock, f"another watcher of job {self.job} holds the lock {lock} on "
                   f"{self.address} ({by}waited {timeout_s:g}s)")  # fmt: skip
        return checkpoint

    def _holder(self, name: str) -> str | None:
        """Who holds the lock ``name``, as far as the server says: never an error of its own."""
        try:
            return dialect.lock_holder(self.fetch(dialect.LOCK_HOLDER, (name, name)))
        except IdsyncError:
            return None

    def _held(self, got: bool | None, name: str, held_elsewhere: str) -> None:
        """Nothing when the lock was taken; else why not: the wait failed (None), or another
        session held the lock all along."""
        if got is None:
            raise lock_failed(self.address, name)
        if not got:
            raise LockHeldError(held_elsewhere)

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Save ``checkpoint`` alone (the position moved, with nothing to insert)."""
        self.transaction(
            lambda cursor: self._save(cursor, checkpoint),
            f"saving the checkpoint in {state.STATE_TABLE}",
        )

    def _save(self, cursor: Any, checkpoint: Checkpoint) -> None:
        state.save(cursor, self.job, self._state_key, checkpoint)

    # --- what `init` creates and `status` reads ------------------------------------------------

    def create_table(self) -> bool:
        """Create the job's table if missing (never altering one); True if created."""
        return schema.create_target_table(self, self.table, self.column, self.mark)

    def create_owned_tables(self) -> tuple[str, ...]:
        """Create the runs history and the watch state where missing; the names of those
        created."""
        had_state = self.fetch(dialect.TABLE_EXISTS, (self.url.database, state.STATE_TABLE))
        created = (RUNS_TABLE,) if history.create_table(self) else ()
        self.transaction(state.create_table, f"creating {state.STATE_TABLE}")
        return created + (() if had_state else (state.STATE_TABLE,))

    def record_run(self, row: RunRecord) -> None:
        history.append(self, row)

    def recent_runs(self, job: str | None, limit: int) -> list[RunRecord]:
        return history.recent(self, job, limit)

    def last_success(self, job: str, commands: tuple[str, ...]) -> RunRecord | None:
        return history.last_success(self, job, commands)
