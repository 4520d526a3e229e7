"""Writing a run's missing ids: batches inserted and committed (a dry run: predicted)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from idsync.config import Job
from idsync.errors import IdsyncError
from idsync.ids import collision
from idsync.target import Column, Target

if TYPE_CHECKING:  # the pass hands itself in; it imports this module
    from idsync.run.passes import SyncPass

log = logging.getLogger("idsync")


class BatchWriter:
    """Collects missing ids into batches; inserts and commits each (or, in a dry run, counts).

    With a ``limit``, nothing is inserted until the source has ended: ids are held (at most
    ``limit`` of them), and one more than the limit marks the run as refused.
    """

    def __init__(self, run: SyncPass, target: Target, column: Column, limit: int | None) -> None:
        self.run, self.target, self.limit = run, target, limit
        self.size = run.job.batch_size
        self.batch: list[str] = []
        self.refused = False
        self.rejected = 0
        """Ids of the batches written (or, in a dry run, predicted) that the column refused."""
        # What makes a missing id collide with a stored one in a real run: a collation that
        # takes two texts for equal, and a UNIQUE index that turns the insert into a no-op.
        self.collisions = column.unique and not column.exact
        self.column = column
        self.first_of_key: dict[bytes, str] = {}
        """In a dry run: the first new id of each collation key (what the run would store)."""
        self.log_ids = run.options.log_ids and log.isEnabledFor(logging.INFO)

    def extend(self, texts: list[str]) -> None:
        if self.refused:
            return
        self.batch.extend(texts)
        if self.limit is not None:
            if len(self.batch) > self.limit:
                self.refused, self.batch = True, []
            return
        while len(self.batch) >= self.size:
            full, self.batch = self.batch[: self.size], self.batch[self.size :]
            self._write(full)

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        for start in range(0, len(batch), self.size):
            self._write(batch[start : start + self.size])

    def _write(self, batch: list[str]) -> None:
        if self.run.options.dry_run:
            self._predict(batch)
        else:
            self._insert(batch)

    def _predict(self, batch: list[str]) -> None:
        """A dry run's rejections: the ids the insert would find equal to a stored value."""
        if not self.collisions:
            self.run.stored(batch)
            return
        stored = self.target.stored_equal(batch)
        for text, other in stored.items():
            self.run.report.reject(text, collision(other))
            self.rejected += 1
        new = [text for text in batch if text not in stored]
        kept = []
        for text, key in zip(new, self.target.collation_keys(new, self.column), strict=True):
            first = self.first_of_key.setdefault(key, text)
            if first == text:
                kept.append(text)
            else:  # the run would insert `first`, then find this one equal to it
                self.run.report.reject(text, collision(first, by_this_run=True))
                self.rejected += 1
        self.run.stored(kept)

    def _insert(self, batch: list[str]) -> None:
        report = self.run.report
        try:
            with report.timing("insert_s"):
                result = self.target.insert_batch(batch)
        except IdsyncError:
            # Its commit may have happened, its reply lost: the next pass settles it.
            self.run.doubt.inserts[:] = batch
            raise
        report.batches += 1
        report.inserted += result.inserted
        report.restored += result.restored
        report.concurrent += max(0, len(result.landed) - result.inserted - result.restored)
        self.rejected += len(result.rejected)
        for text, reason in result.rejected:
            report.reject(text, reason)
        self.run.stored(result.landed)
        self.run.progress.advance("insert", result.inserted)
        if self.log_ids and result.landed:  # a batch wholly rejected logs no empty line
            self._log_inserted(result.landed, result.inserted)

    def _log_inserted(self, landed: list[str], inserted: int) -> None:
        name, column = self.run.job.name, self.run.job.column
        if inserted != len(landed):
            log.warning(
                "[%s] %d of %d ids in this batch were stored by another writer meanwhile",
                name,
                len(landed) - inserted,
                len(landed),
            )
            return
        # One record per batch, one line per id: 200,000 records cost more than the inserts
        # themselves; the CLI's text formatter prefixes every line, its JSON one lists the ids.
        extra = {
            "job": name,
            "run_id": self.run.report.run_id,
            "event": "inserted",
            "ids": landed,
            "summary": f"[{name}] Inserted {len(landed)} {column} values",
        }
        log.info("%s", IdLines(f"[{name}] Inserted {column}: ", landed), extra=extra)


class IdLines:
    """The original job's per-id lines, joined only if a handler formats the record."""

    def __init__(self, prefix: str, ids: list[str]) -> None:
        self.prefix, self.ids = prefix, ids

    def __str__(self) -> str:
        return "\n".join(self.prefix + text for text in self.ids)


def log_gone(job: Job, texts: list[str], run_id: str | None = None) -> None:
    """One "Deleted orphan <column>: <id>" line per orphan gone ("Marked" for a soft delete),
    as the inserts' lines are written."""
    if not texts or not log.isEnabledFor(logging.INFO):
        return
    verb = "Marked" if job.mark_column else "Deleted"
    extra: dict[str, object] = {
        "job": job.name, "event": "deleted", "ids": texts,
        "summary": f"[{job.name}] {verb} {len(texts)} orphan {job.column} values",
    }  # fmt: skip
    if run_id is not None:
        extra["run_id"] = run_id
    log.info("%s", IdLines(f"[{job.name}] {verb} orphan {job.column}: ", texts), extra=extra)
