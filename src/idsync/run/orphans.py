"""Mirror mode: the rows of orphans (ids no document has) deleted after a run's inserts (or
marked, for a job whose ``orphan_action`` is ``mark:<column>``).

Guarded three ways before anything is deleted: a source that gave no ids deletes nothing, ever;
more orphans than ``--max-deletes`` (1% of the table by default) deletes nothing; a foreign key
that would delete or change rows of another table (CASCADE, SET NULL, SET DEFAULT) deletes
nothing unless allowed. Each batch is then deleted exactly (:mod:`idsync.deleting`): every
orphan re-verified against the source around its delete, rows a foreign key keeps reported.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from idsync.envelope import MAX_SAMPLES, Rejected
from idsync.errors import GuardError, IdsyncError, InterruptedRun
from idsync.ids import is_utf8, shown_text
from idsync.mirroring import refuse_cascades, require_exact_unique
from idsync.mongo.source import MongoSource
from idsync.run.batches import log_gone
from idsync.target import Column, DeleteResult, Target

if TYPE_CHECKING:  # the pass hands itself in; it imports this module
    from idsync.run.passes import SyncPass

log = logging.getLogger("idsync")

DEFAULT_SHARE = 0.01
"""With no --max-deletes: the most orphans deleted, as a share of the target's rows."""
MIN_ALLOWED = 10
"""...but never fewer than this many (a table of 50 rows may lose one)."""


class Orphans:
    """A pass's orphans, held (at most one more than the guard allows) to be deleted at its
    end when the job mirrors the source."""

    def __init__(self, run: SyncPass) -> None:
        self.run = run
        self.on = run.options.mirrors(run.job)
        run.report.mirror = self.on
        run.report.orphan_action = run.job.orphan_action
        self.held: list[str] = []
        self.cap: int | None = None
        self.not_text = 0
        """Orphans left for not being UTF-8 text."""

    def begin(self, target_rows: int) -> None:
        """The target's rows are known: hold no more orphans than the guard could let through."""
        limit = self.limit(target_rows)
        self.cap = None if limit is None else limit + 1

    def add(self, texts: list[str]) -> None:
        if not self.on:
            return
        if not all(map(is_utf8, texts)):
            # A binary column's bytes that are not UTF-8: no document can have them, and no
            # statement can name them as text; left as they are, said once at the end.
            self.not_text += sum(not is_utf8(text) for text in texts)
            texts = [text for text in texts if is_utf8(text)]
        room = len(texts) if self.cap is None else max(0, self.cap - len(self.held))
        self.held.extend(texts[:room])

    def limit(self, target_rows: int) -> int | None:
        """The most orphans this run may delete in all (None: no limit)."""
        options = self.run.options
        if options.force:
            return None
        if options.max_deletes is None and options.max_deletes_fraction is None:
            return max(MIN_ALLOWED, int(DEFAULT_SHARE * target_rows))
        limits = [options.max_deletes] if options.max_deletes is not None else []
        if options.max_deletes_fraction is not None:
            limits.append(int(options.max_deletes_fraction * target_rows))
        return min(limits)

    def require(self, column: Column) -> None:
        """Refuse, before anything is written, a column where deleting one text could delete
        another's row (:func:`require_exact_unique`)."""
        if self.on:
            require_exact_unique(
                self.run.job.table, self.run.job.column, column, "deleting orphans from"
            )

    def finish(self, source: MongoSource, target: Target) -> None:
        """Delete the held orphans (a dry run: count what would go), or refuse."""
        report = self.run.report
        if not self.on or not report.orphans:
            return
        if self.not_text:
            report.warnings.append(f"{self.not_text:,} orphans are not UTF-8 text: not deleted")
        if not report.source_ids:  # whatever --allow-empty-source says about inserting
            report.warnings.append("the source gave no ids: no orphan deleted")
            return
        self._guard(target)
        if self.run.options.dry_run:
            self._predict(source)
            return
        self._delete(source, target)

    def _guard(self, target: Target) -> None:
        report, job, options = self.run.report, self.run.job, self.run.options
        limit = self.limit(report.target_ids_before)
        if limit is not None and report.deleted + report.orphans > limit:
            report.delete_refused = report.orphans
            raise GuardError(
                f"{report.orphans:,} orphans found, more than the limit of"
                f" {limit - report.deleted:,}"
                f" (target has {report.target_ids_before:,}); nothing deleted;"
                " --max-deletes N|P% or --force to delete them"
            )
        try:
            refuse_cascades(job, target, options.allow_cascade)
        except GuardError:
            report.delete_refused = report.orphans
            raise

    def _predict(self, source: MongoSource) -> None:
        report = self.run.report
        live = source.live(self.held)
        doomed = [text for text in self.held if text not in live]
        report.deleted, report.kept_live = len(doomed), len(live)
        self._sample(doomed)

    def _delete(self, source: MongoSource, target: Target) -> None:
        run, report = self.run, self.run.report
        size = run.job.batch_size
        run.progress.start("delete", len(self.held) if run.shown else None)
        for start in range(0, len(self.held), size):
            if run.stop.is_set():
                raise InterruptedRun(
                    f"interrupted after deleting {report.deleted:,} orphans; run again to finish"
                )
            batch = self.held[start : start + size]
            try:
                with report.timing("delete_s"):
                    result = target.delete_orphans(batch, source.live)
            except IdsyncError:
                # Its commit may have happened, its reply lost: the next pass settles it.
                self.run.doubt.deletes[:] = batch
                raise
            self._count(result)
            run.progress.advance("delete", len(result.deleted))

    def settle(self, target: Target, doubt: list[str]) -> None:
        """The delete batch in flight when the previous pass failed may have committed, its
        reply lost: those of its orphans the table no longer has (unmarked) are taken for this
        run's, as a lost insert's ids are (:meth:`SyncPass._settle`)."""
        if not doubt:
            return
        present = target.present(doubt)
        gone = [text for text in doubt if text not in present]
        self._count(DeleteResult(gone, rows=len(gone)))
        doubt.clear()

    def _count(self, result: DeleteResult) -> None:
        report = self.run.report
        report.deleted += len(result.deleted)
        report.deleted_rows += result.rows
        report.kept_live += len(result.live)
        report.kept_referenced += len(result.referenced)
        samples = report.kept_referenced_samples
        for text, reason in result.referenced[: MAX_SAMPLES - len(samples)]:
            samples.append(Rejected(shown_text(text), reason))
        self._sample(result.deleted)
        if self.run.options.log_ids:
            log_gone(self.run.job, result.deleted, report.run_id)

    def _sample(self, texts: list[str]) -> None:
        samples = self.run.report.deleted_samples
        samples.extend(shown_text(text) for text in texts[: MAX_SAMPLES - len(samples)])
