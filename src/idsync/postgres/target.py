"""PostgreSQL as idsync's :class:`~idsync.target.Target`: one connection, one table and column.

The parts do the work (:mod:`connection`, :mod:`catalog`, :mod:`writer`, :mod:`probes`), with
the SQL of :mod:`dialect`; this class holds what they share and is what the features get.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from idsync.config import Job, Settings
from idsync.errors import ConfigError, IdsyncError, LockHeldError
from idsync.ids import HEX
from idsync.ledger import Ledger
from idsync.locks import held_by, wait_for_lock
from idsync.mirroring import require_exact_unique
from idsync.postgres import catalog, deleter, dialect, mirror
from idsync.postgres.connection import Connection
from idsync.postgres.probes import PostgresProbes
from idsync.postgres.writer import Writer
from idsync.runs import ADDED, SUCCESS, RunRecord, fields_of
from idsync.session import SqlBuckets, stored_among
from idsync.target import (
    RUNS_TABLE,
    STATE_TABLE,
    TRIGGER,
    BatchResult,
    Checkpoint,
    Column,
    DeleteResult,
    Reference,
)
from idsync.urls import PostgresURL

_TRY_EVERY_S = 0.05
_CHUNK = 1000


class PostgresTarget(Connection):
    """One connection to the target database, scoped to one job's table and column."""

    def __init__(self, settings: Settings, job: Job, url: PostgresURL) -> None:
        schema, _, table = job.table.rpartition(".")
        super().__init__(settings, url, schema or "public")
        self.job = job.name
        self.table = table
        self.column = job.column
        self.mark = job.mark_column
        self._mark_time = ""  # what sets the mark to now: from inspect(), as the column's type
        self._relation = f"{self.schema}.{table}"  # in SQL: never another schema's table
        self._collation = '"C"'  # the column's, as COLLATE takes it, once inspected
        self._verify_all = False
        self._state_key = f"{table}.{job.column}"

    def connect(self) -> None:
        """Connect, then make sure the schema is there: every name is looked up in it alone."""
        super().connect()
        if not self.fetch(dialect.SCHEMA_EXISTS, (self.schema,), "looking for the schema"):
            raise ConfigError(
                f'schema "{self.schema}" does not exist in database {self.database}'
                " (or the user may not see it): create it; `idsync init` makes tables only"
            )
        self.commit()

    def inspect(self) -> Column:
        """Read the column's type, size, collation and indexes; refuse what cannot hold ids."""
        if not self.fetch(dialect.TABLE_EXISTS, (self.table,)):
            self.fetch(dialect.nothing_from(self._relation), (), f"reading {self.table}")
            raise ConfigError(
                f"table {self.shown_table} does not exist: run `idsync init` to create it"
            )
        column, self._collation = catalog.describe_column(self.fetch, self.table, self.column)
        self._verify_all = bool(column.triggers)
        self._state_key = f"{column.catalog_names[1]}.{column.catalog_names[2]}"
        if self.mark is not None:
            require_exact_unique(self.shown_table, self.column, column, "marking orphans in")
            self._mark_time = catalog.mark_time(self.fetch, self.table, self.mark)
        return column

    @property
    def shown_table(self) -> str:
        return f"{self.database}.{self.schema}.{self.table}"

    def ledger(self, key: str) -> Ledger:
        return Ledger(self, dialect.LEDGER, key)

    def read_between(self, low: str, high: str) -> set[str]:
        sql = dialect.select_between(self._relation, self.column, self.mark)
        rows = self.fetch(sql, (low, high), f"reading {self.table}")
        self.commit()  # no snapshot held between ranges
        return {str(v) for (v,) in rows}

    def lock_name(self) -> str:
        return f"idsync:{self.shown_table}.{self.column}"

    def lock(self, timeout_s: float, stop: threading.Event | None = None) -> None:
        """Take the target's advisory lock (held by the session), or refuse after
        ``timeout_s``; ``stop`` set meanwhile ends the wait."""
        name = self.lock_name()
        if not self._wait_for(name, timeout_s, stop):
            by = held_by(self._holder(name))
            raise LockHeldError(
                f"another run holds the lock {name} on {self.address} ({by}"
                f"waited {timeout_s:g}s; --lock-timeout sets the wait)"
            )

    def _wait_for(self, name: str, timeout_s: float, stop: threading.Event | None) -> bool:
        """Take the session's advisory lock ``name``: True once held, False after
        ``timeout_s``; ``stop`` set meanwhile ends the wait (:class:`InterruptedRun`)."""
        key = dialect.lock_key(name)

        def get_lock(seconds: float) -> object:
            deadline = time.monotonic() + seconds
            while True:
                [(got,)] = self.fetch(dialect.TRY_LOCK, (key,), "taking the lock")
                self.commit()  # the lock belongs to the session, not to this transaction
                if got or time.monotonic() >= deadline:
                    return 1 if got else 0
                time.sleep(_TRY_EVERY_S)

        what, holder = f"the lock {name} on {self.address}", lambda: self._holder(name)
        return bool(wait_for_lock(get_lock, timeout_s, stop, what, holder, job=self.job))

    def _holder(self, name: str) -> str | None:
        """Who holds the advisory lock ``name``, as far as the server says: never an error."""
        try:
            args = dialect.lock_holder_args(dialect.lock_key(name))
            rows = self.fetch(dialect.LOCK_HOLDER, args, "asking who holds the lock")
            self.commit()
        except IdsyncError:
            return None
        return dialect.lock_holder(rows)

    def count_values(self) -> int:
        [(count,)] = self.fetch(dialect.count_values(self._relation, self.column, self.mark))
        self.commit()
        return int(count)

    def estimated_rows(self) -> int | None:
        """The planner's estimate of the table's rows (free); None before any ANALYZE."""
        rows = self.fetch(dialect.ESTIMATED_ROWS, (self._relation,))
        self.commit()
        return int(rows[0][0]) if rows and rows[0][0] is not None and rows[0][0] > 0 else None

    def read_ordered_batches(self, size: int) -> Iterator[list[str]]:
        """Every non-null value of the column in its collation's order, ``size`` at a time,
        each page a query of its own."""
        after: str | None = None
        while True:
            sql = dialect.select_page(self._relation, self.column, after is not None, self.mark)
            args = (size,) if after is None else (after, size)
            values = [str(v) for (v,) in self.fetch(sql, args, f"reading {self.table}")]
            self.commit()  # no snapshot held from page to page
            if not values:
                return
            after = values[-1]
            yield values
            if len(values) < size:
                return

    def read_id_batches(self) -> Iterator[list[str]]:
        sql = dialect.select_column(self._relation, self.column, self.mark)
        for rows in self.stream_batches(sql, (), f"reading {self.table}"):
            yield [str(value) for (value,) in rows]

    def insert_batch(self, ids: Sequence[str], checkpoint: Checkpoint | None = None) -> BatchResult:
        """Insert ``ids`` in one transaction, then prove each one is stored exactly; a
        ``checkpoint`` is saved in that same transaction: it lands with the batch or not at all."""
        with self._guard():
            names = (self._relation, self.column, self.mark)
            result = Writer(self, names, self._verify_all).insert(ids)
        if checkpoint is not None:
            self.execute(dialect.SAVE_STATE, self._state_row(checkpoint), "saving the checkpoint")
        self.commit()
        return result

    def present(self, texts: Sequence[str]) -> set[str]:
        def stored_of(chunk: list[str]) -> list[str]:
            sql = dialect.values_of(self._relation, self.column, self.mark)
            return [str(v) for (v,) in self.fetch(sql, (chunk,), f"reading {self.table}")]

        return stored_among(list(texts), stored_of)

    def references(self) -> tuple[Reference, ...]:
        rows = self.fetch(mirror.REFERENCES, (self._relation,), "reading foreign keys")
        event = "DELETE" if self.mark is None else "UPDATE"  # what the mirror does to a row
        triggers = self.fetch(mirror.event_triggers(event), (self._relation,), "reading triggers")
        self.commit()
        return tuple(
            Reference(str(name), str(child), tuple(str(columns).split(",")),
                      mirror.DELETE_ACTIONS.get(str(action), str(action)))
            for name, child, columns, action in rows
        ) + tuple(
            Reference(str(name), str(name), (), TRIGGER, event) for (name,) in triggers
        )  # fmt: skip

    def delete_orphans(
        self, texts: Sequence[str], live: Callable[[list[str]], set[str]]
    ) -> DeleteResult:
        marking = None if self.mark is None else (self.mark, self._mark_time)
        return deleter.delete_orphans(self, (self._relation, self.column), texts, live, marking)

    def stored_equal(self, texts: Sequence[str]) -> dict[str, str]:
        """For texts with no exact copy in the column: the stored value each equals under the
        column's collation (``'ABC'`` for ``'abc'`` under a case-insensitive one), if any."""
        found: dict[str, str] = {}
        for start in range(0, len(texts), _CHUNK):
            chunk = list(texts[start : start + _CHUNK])
            if not self.fetch(dialect.values_of(self._relation, self.column), (chunk,)):
                continue  # the usual case: one statement says none of them is there
            for text in chunk:
                rows = self.fetch(dialect.equal_to(self._relation, self.column), (text,))
                if rows and str(rows[0][0]) != text:
                    found[text] = str(rows[0][0])
        return found

    def collation_keys(self, texts: Sequence[str], column: Column) -> list[bytes]:
        if column.exact or not column.collation:
            return [text.encode() for text in texts]
        rows = self.fetch(dialect.representatives(self._collation), (list(texts),))
        return [str(first).encode() for (first,) in rows]

    def sorts_hex_as_bytes(self, column: Column) -> bool:
        texts = [*HEX, *(a + b for a in HEX for b in HEX)]
        rows = self.fetch(dialect.ordered_texts(self._collation), (texts,))
        return [str(v) for (v,) in rows] == sorted(texts)

    def bytes_sent(self) -> int | None:
        return None  # PostgreSQL keeps no per-session byte count

    def buckets(self, column: Column, moduli: tuple[int, int]) -> SqlBuckets:
        names = (self._relation, self.column, self.mark)
        return SqlBuckets(self, dialect, names, column, moduli)

    @property
    def probes(self) -> PostgresProbes:
        return PostgresProbes(self, (self.table, self.column, self.mark), self._relation)

    # --- a watcher's lock and checkpoint -------------------------------------------------------

    def claim_watch(self, timeout_s: float, stop: threading.Event) -> Checkpoint | None:
        """Create the state table if missing, take the lock that allows one watcher per job and
        target, and read its checkpoint; :class:`LockHeldError` if another watcher holds it."""
        if not self.fetch(dialect.TABLE_EXISTS, (STATE_TABLE,)):
            # Only then: PostgreSQL asks for CREATE on the schema even for IF NOT EXISTS.
            self.execute(dialect.STATE_DDL, (), f"creating {STATE_TABLE}")
        self.commit()
        name = f"idsync-watch:{self.database}.{self.schema}.{self._state_key}:{self.job}"
        if not self._wait_for(name, timeout_s, stop):
            raise LockHeldError(
                f"another watcher of job {self.job} holds the lock {name} on {self.address}"
                f" ({held_by(self._holder(name))}waited {timeout_s:g}s)"
            )
        rows = self.fetch(dialect.LOAD_STATE, (self.job, self._state_key), "reading the state")
        self.commit()
        if not rows:
            return None
        mode, token, last_id, last_time, updated = rows[0]
        return Checkpoint(str(mode), token, last_id, _aware(last_time), _aware(updated))

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Save ``checkpoint`` alone (the position moved, with nothing to insert)."""
        self.execute(dialect.SAVE_STATE, self._state_row(checkpoint), "saving the checkpoint")
        self.commit()

    def _state_row(self, checkpoint: Checkpoint) -> tuple[object, ...]:
        last_id = checkpoint.last_seen_id[:255] if checkpoint.last_seen_id else None
        moment = checkpoint.last_seen_time
        return (self.job, self._state_key, checkpoint.mode, checkpoint.resume_token, last_id,
                _naive(moment) if moment else None)  # fmt: skip

    # --- what `init` creates and `status` reads ------------------------------------------------

    def create_table(self) -> bool:
        if self.fetch(dialect.TABLE_EXISTS, (self.table,)):
            return False
        clash = {self.column, self.mark} & {"id", "created_at"}
        if clash:
            raise ConfigError(f"column name {clash.pop()!r} clashes with idsync's own columns")
        self.execute(
            dialect.target_table(self._relation, self.column, self.mark),
            (),
            f"creating {self.table}",
        )
        self.commit()
        return True

    def create_owned_tables(self) -> tuple[str, ...]:
        missing = tuple(
            name for name in (RUNS_TABLE, STATE_TABLE)
            if not self.fetch(dialect.TABLE_EXISTS, (name,))
        )  # fmt: skip
        self.execute(dialect.RUNS_DDL, (), f"creating {RUNS_TABLE}")
        if len(self._history_fields()) < len(fields_of(set(ADDED))):  # an older version's
            self.execute(dialect.RUNS_ADD, (), f"adding columns to {RUNS_TABLE}")
        self.execute(dialect.STATE_DDL, (), f"creating {STATE_TABLE}")
        self.commit()
        return missing

    def _history_fields(self) -> tuple[str, ...]:
        """The fields `idsync_runs` holds (one made by an older version lacks the newer)."""
        rows = self.fetch(dialect.RUNS_ADDED, (), "reading run history")
        return fields_of({str(name) for (name,) in rows})

    def record_run(self, row: RunRecord) -> None:
        fields = self._history_fields()
        values: list[Any] = [getattr(row, name) for name in fields]
        values[3], values[4] = _naive(row.started_at), _naive(row.finished_at)
        self.execute(dialect.insert_run(fields), values, "history")
        self.commit()

    def recent_runs(self, job: str | None, limit: int) -> list[RunRecord]:
        args: list[object] = [job, limit] if job else [limit]
        fields = self._history_fields()
        sql = dialect.recent_runs(fields, job is not None)
        return [_record(fields, row) for row in self.fetch(sql, args, "reading run history")]

    def last_success(self, job: str, commands: tuple[str, ...]) -> RunRecord | None:
        statuses = sorted(str(status) for status in SUCCESS)
        args = [job, list(commands), statuses]
        fields = self._history_fields()
        rows = self.fetch(dialect.last_success(fields), args, "reading run history")
        return _record(fields, rows[0]) if rows else None


def _aware(value: object) -> datetime | None:
    """timestamp columns come back naive; these hold UTC."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _record(fields: tuple[str, ...], row: tuple[Any, ...]) -> RunRecord:
    data = dict(zip(fields, row, strict=True))
    data["started_at"] = data["started_at"].replace(tzinfo=UTC)
    data["finished_at"] = data["finished_at"].replace(tzinfo=UTC)
    return RunRecord(**data)
