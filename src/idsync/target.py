"""What run, check, watch and doctor ask of a SQL target, and the plain data it answers with.

A server package (``idsync.mysql`` today) implements :class:`Target`; the features type against
it and get one from :func:`idsync.targets.open_target`, so a second SQL engine is a new package
and one line there, not a change to run, check or watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Protocol

from idsync.ids import ColumnFit, Summary
from idsync.ledger import Ledger
from idsync.runs import RunRecord

RUNS_TABLE = "idsync_runs"
"""One row per run, check or watch pass, in the target's database (created by `idsync init`)."""
STATE_TABLE = "idsync_state"
"""One row per watcher (job and target): where it is, in the target's database."""


@dataclass(frozen=True)
class Column:
    """The target column as the server's catalog describes it."""

    data_type: str
    fit: ColumnFit
    collation: str | None
    unique: bool
    """A UNIQUE index on exactly this column (no prefix): what makes racing writers safe."""
    catalog_names: tuple[str, str, str] = ("", "", "")
    """Database, table and column as the server's catalog spells them (names are
    case-insensitive there, lock names are not)."""
    triggers: tuple[str, ...] = ()
    """What may store another text than the one sent, or hide what was stored, named
    ("trigger t", "row-level security on t"): triggers on insert or update (those the user may
    see; on PostgreSQL of any timing, on any partition too) and row-level security. With any,
    every batch is verified."""
    deterministic: bool | None = None
    """Whether the collation compares the bytes alone, where the server says so (PostgreSQL);
    None where the collation's name says it (MySQL)."""
    ordered: bool = False
    """The UNIQUE index is a B-tree in the column's own order (not MariaDB's hash of a long
    column, not another collation or operator class): a range of it reads in order, cheaply."""

    @property
    def exact(self) -> bool:
        """Whether two different texts can never be equal in the column (binary, NO PAD)."""
        if self.deterministic is not None:
            return self.deterministic and self.fit.trailing_spaces is None
        collation = (self.collation or "").lower()
        return self.fit.charset is None or collation.endswith(("_nopad_bin", "_0900_bin"))


@dataclass
class BatchResult:
    """What one committed batch did."""

    inserted: int = 0
    """Rows this run added."""
    restored: int = 0
    """Rows whose mark (soft delete) this run cleared: their ids came back."""
    landed: list[str] = field(default_factory=list)
    """Ids now stored exactly (ours, or a concurrent writer's)."""
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(id, reason) for ids that are not stored exactly."""


TRIGGER = "TRIGGER"
"""A :class:`Reference`'s ``on_delete`` for a trigger (or a PostgreSQL rule) on the table's
deletes: it may do anything elsewhere, so it is treated as a cascade."""


@dataclass(frozen=True)
class Reference:
    """A foreign key that references the target's table (any of its columns): deleting a row
    may be refused by it, or change rows of another table."""

    constraint: str
    table: str
    """The referencing table, as its server names it in full."""
    columns: tuple[str, ...]
    on_delete: str
    """``NO ACTION``, ``RESTRICT``, ``CASCADE``, ``SET NULL`` or ``SET DEFAULT``."""
    event: str = "DELETE"
    """For a trigger (or rule): the event it fires on, what the mirror does to a row (DELETE, or
    UPDATE for a soft delete's marks)."""

    @property
    def changes_rows(self) -> bool:
        """Whether deleting a referenced row deletes or changes rows of the other table."""
        return self.on_delete in {"CASCADE", "SET NULL", "SET DEFAULT", TRIGGER}

    def __str__(self) -> str:
        if self.on_delete == TRIGGER:
            return f"{self.table} ON {self.event}: may change any table"
        return f"{self.table}({', '.join(self.columns)}) ON DELETE {self.on_delete}"


@dataclass
class DeleteResult:
    """What one committed batch of orphan deletes did."""

    deleted: list[str] = field(default_factory=list)
    """The texts whose rows were deleted."""
    rows: int = 0
    """Rows deleted (a column without a UNIQUE index may hold a text more than once)."""
    live: list[str] = field(default_factory=list)
    """Found in the source again when re-verified (or equal under the column's collation to a
    text that is): kept."""
    referenced: list[tuple[str, str]] = field(default_factory=list)
    """Kept: (text, what references it)."""
    gone: list[str] = field(default_factory=list)
    """No longer stored: deleted by another writer meanwhile."""


@dataclass(frozen=True)
class Checkpoint:
    """How far a watcher has come. Times are UTC."""

    mode: str
    """How it was following: ``change-stream`` or ``polling``."""
    resume_token: str | None = None
    """The change stream's resume token as canonical extended JSON (:func:`~idsync.mongo.feeds.
    encode_token`): where to resume."""
    last_seen_id: str | None = None
    """The newest id committed with this checkpoint: for people, not for resuming."""
    last_seen_time: datetime | None = None
    """Every document created before this (less the poll window) is in the target: the time of
    the last committed change, or of the start of the last poll."""
    updated_at: datetime | None = None
    """When the row was written (read back only)."""


class Buckets(Protocol):
    """The target's values shaped like an ObjectId's text, summarised and read per hex prefix
    (:class:`~idsync.check.buckets.BucketSide`), and the rest; with what it read."""

    ids_read: int
    count_s: float

    def probe(self) -> str | None: ...
    def summaries(self, prefix: str, length: int) -> dict[str, Summary]: ...
    def ids(self, prefix: str) -> Iterator[str]: ...
    def others(self) -> Iterator[str]: ...


class Probes(Protocol):
    """What doctor asks the target server, each answer plain data (no SQL leaves the package)."""

    write_privileges: tuple[str, ...]
    """What `run` needs on the ids table."""

    def server_version(self) -> str: ...
    def grant(self, privileges: Sequence[str], table: str) -> str: ...
    def pads(self, collation: str) -> bool: ...
    def write_denials(self) -> list[str]: ...
    def mirror_denials(self, deletes: bool) -> list[str]: ...
    def state_denials(self) -> list[str]: ...
    def history_present(self) -> bool: ...
    def history_denials(self) -> list[str]: ...
    def local_infile(self) -> bool | None: ...
    def exact_column(self) -> str: ...
    def utc_now(self) -> datetime: ...


class Target(Protocol):
    """One connection to the target database, scoped to one table and column."""

    database: str
    table: str
    column: str

    @property
    def address(self) -> str: ...
    @property
    def shown_table(self) -> str:
        """The table as its server names it in full: ``db.table``, ``db.schema.table``."""

    def __enter__(self) -> Target: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def connect(self) -> None: ...
    def close(self) -> None: ...
    def inspect(self) -> Column: ...
    def lock(self, timeout_s: float, stop: threading.Event | None = None) -> None: ...
    def read_id_batches(self) -> Iterator[list[str]]: ...
    def read_ordered_batches(self, size: int) -> Iterator[list[str]]: ...
    def estimated_rows(self) -> int | None: ...
    def count_values(self) -> int: ...
    def insert_batch(
        self, ids: Sequence[str], checkpoint: Checkpoint | None = None
    ) -> BatchResult: ...
    def present(self, texts: Sequence[str]) -> set[str]:
        """Which of ``texts`` the column holds exactly."""

    def stored_equal(self, texts: Sequence[str]) -> dict[str, str]: ...
    def collation_keys(self, texts: Sequence[str], column: Column) -> list[bytes]: ...
    def sorts_hex_as_bytes(self, column: Column) -> bool: ...
    def bytes_sent(self) -> int | None: ...
    def buckets(self, column: Column, moduli: tuple[int, int]) -> Buckets: ...
    def claim_watch(self, timeout_s: float, stop: threading.Event) -> Checkpoint | None: ...
    def ledger(self, key: str) -> Ledger:
        """The ranges of `idsync work` rounds under ``key``, in a table of the target's
        database."""

    def read_between(self, low: str, high: str) -> set[str]:
        """The column's values from ``low`` to ``high``, both included."""

    def references(self) -> tuple[Reference, ...]:
        """The foreign keys that reference the table, as far as the catalog shows them, and the
        triggers on what the mirror does to a row (DELETE; UPDATE for a soft delete)."""

    def delete_orphans(
        self, texts: Sequence[str], live: Callable[[list[str]], set[str]]
    ) -> DeleteResult:
        """Delete the rows holding ``texts`` (a UNIQUE, exact column) in one transaction: their
        rows locked first, then ``live`` asked which of them the source has now (those are
        kept), the rest deleted, ``live`` asked again; rows a foreign key (or a trigger) keeps
        are kept and reported."""

    def save_checkpoint(self, checkpoint: Checkpoint) -> None: ...
    @property
    def probes(self) -> Probes: ...
    def create_table(self) -> bool: ...
    def create_owned_tables(self) -> tuple[str, ...]: ...
    def record_run(self, row: RunRecord) -> None: ...
    def recent_runs(self, job: str | None, limit: int) -> list[RunRecord]: ...
    def last_success(self, job: str, commands: tuple[str, ...]) -> RunRecord | None: ...
