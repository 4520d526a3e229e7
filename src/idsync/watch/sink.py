"""The MySQL side of a watcher: pending batches, and committing each with its checkpoint.

The watcher has a connection of its own (a full pass opens others). On it, it holds a named
lock that allows one watcher per job and target (two would overwrite each other's checkpoint),
and it commits every batch together with the checkpoint that covers it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from idsync.config import Job, RunOptions, Settings
from idsync.errors import IdsyncError
from idsync.ids import DUPLICATE_TEXT, ColumnFit
from idsync.mirroring import refuse_cascades, require_exact_unique
from idsync.mongo.feeds import Change
from idsync.mongo.values import encode_batch
from idsync.target import BatchResult, Checkpoint, Column, DeleteResult, Target
from idsync.targets import open_target

log = logging.getLogger(__name__)


@dataclass
class PendingBatch:
    """Changes read but not yet committed, encoded by the gate a full pass uses."""

    fit: ColumnFit
    unique: bool = True
    """The values are keys (`_id`): two values with one text are two documents, and the second
    is rejected as a full pass rejects it; a field's values may repeat."""
    texts: dict[str, None] = field(default_factory=dict)
    """Ids to insert, in order, each once."""
    gone: dict[str, None] = field(default_factory=dict)
    """Ids of deleted documents (mirror mode): their rows to delete, re-verified."""
    rejected: list[tuple[str, str]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    seen: int = 0
    token: Mapping[str, Any] | None = None
    """Resume token after the last change: the checkpoint of this batch."""
    last_id: str | None = None
    oldest_at: datetime | None = None
    newest_at: datetime | None = None
    started: float | None = None
    """When the first change came (monotonic): a batch is written at most this much later."""
    _raw: dict[str, object] = field(default_factory=dict, repr=False)
    """The value each text came from: the same document again (a replacement) is no repeat."""

    def add(self, change: Change) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.changes.append(change)
        if change.deleted:
            # The last event of an id decides: deleted, then inserted again, it stays.
            for text in encode_batch([], change.values, self.fit, lambda _text, _why: None):
                self.texts.pop(text, None)
                self.gone[text] = None
            self.token = change.token or self.token
            return
        self.seen += len(change.values)
        for value in change.values:
            for text in encode_batch([], [value], self.fit, self._reject):
                self._add_text(text, value)
        self.token = change.token or self.token
        if change.at is not None:
            self.oldest_at = min(self.oldest_at or change.at, change.at)
            self.newest_at = max(self.newest_at or change.at, change.at)

    def _add_text(self, text: str, value: object) -> None:
        if text in self.texts and self.unique and not _same_key(self._raw[text], value):
            self._reject(text, DUPLICATE_TEXT)
            return
        self.gone.pop(text, None)
        self.texts[text], self._raw[text], self.last_id = None, value, text

    def _reject(self, shown: str, reason: str) -> None:
        self.rejected.append((shown, reason))

    def __len__(self) -> int:
        return len(self.changes)

    def age(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started


def _same_key(a: object, b: object) -> bool:
    """Whether two `_id` values name one document: MongoDB compares numbers by value."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return type(a) is type(b) and a == b


class Sink:
    """One connection to the target, the watcher's lock on it, and its checkpoint row."""

    def __init__(
        self, settings: Settings, job: Job, stop: threading.Event, options: RunOptions | None = None
    ) -> None:
        self.settings, self.job, self.stop = settings, job, stop
        options = options or RunOptions()
        self.mirror, self.allow_cascade = options.mirrors(job), options.allow_cascade
        self.checkpoint: Checkpoint | None = None
        self.unique = True
        self._target: Target | None = None
        self._column: Column | None = None

    @property
    def address(self) -> str:
        return self.settings.target.address

    def open(self) -> None:
        """Connect (if not connected), check the column, take the lock, read the checkpoint."""
        if self._target is not None:
            return
        target = open_target(self.settings, self.job)
        try:
            target.connect()
            column = target.inspect()
            if self.mirror:
                require_exact_unique(
                    self.job.table, self.job.column, column, "deleting orphans from"
                )
                refuse_cascades(self.job, target, self.allow_cascade)
            checkpoint = target.claim_watch(self.settings.lock_timeout_s, self.stop)
        except BaseException:
            target.close()
            raise
        self._target, self._column, self.unique = target, column, column.unique
        self.checkpoint = checkpoint
        if not column.unique:
            log.warning(
                "[%s] %s.%s has no UNIQUE index: each batch is checked against the table first,"
                " but a concurrent `idsync run`, or a watcher of another job into this table,"
                " could store an id twice; add one:"
                " ALTER TABLE %s ADD UNIQUE (%s)",
                self.job.name, self.job.table, self.job.column, self.job.table, self.job.column,
            )  # fmt: skip

    def new_batch(self) -> PendingBatch:
        assert self._column is not None, "open() first"
        return PendingBatch(self._column.fit, unique=self.job.field == "_id")

    def delete(self, texts: list[str], live: Callable[[list[str]], set[str]]) -> DeleteResult:
        """Delete the rows of deleted documents' ids, each re-verified with ``live``."""
        target = self._live()
        assert self._column is not None
        try:
            return target.delete_orphans(texts, live)
        except IdsyncError:
            self.close()
            raise

    def commit(self, texts: list[str], checkpoint: Checkpoint | None) -> BatchResult:
        """Insert ``texts`` and, in the same transaction, save ``checkpoint`` (if any)."""
        target = self._live()
        try:
            # No UNIQUE index refuses an id stored already (a poll's window, the full pass, a
            # restart from the checkpoint): skip what is there. Only a concurrent `idsync run`
            # could store one in between; this watcher alone never does.
            stored = set() if self.unique else target.present(texts)
            fresh = [text for text in texts if text not in stored]
            if fresh or checkpoint is None:
                result = target.insert_batch(fresh, checkpoint)
            else:
                target.save_checkpoint(checkpoint)
                result = BatchResult()
            result.landed += [text for text in texts if text in stored]
        except IdsyncError:
            self.close()  # the transaction is gone with the connection; reconnect next time
            raise
        if checkpoint is not None:
            self.checkpoint = checkpoint
        return result

    def save(self, checkpoint: Checkpoint) -> None:
        """Save ``checkpoint`` alone (the position moved, with nothing to insert)."""
        target = self._live()
        try:
            target.save_checkpoint(checkpoint)
        except IdsyncError:
            self.close()
            raise
        self.checkpoint = checkpoint

    def _live(self) -> Target:
        if self._target is None:
            self.open()
        assert self._target is not None
        return self._target

    def close(self) -> None:
        if self._target is not None:
            self._target.close()  # also releases the lock: the server drops it with the session
            self._target = None
