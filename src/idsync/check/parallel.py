"""`check --workers N`: every id compared, `_id` range by range, by N threads at once.

Each range is read in `_id` order on both sides, a batch at a time (:mod:`idsync.spans`), by a
thread with its own connections; the range of the other `_id`s first. Where ranges cannot serve
(the same reasons as `run --workers`), the check is the usual one, and says why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

from idsync import plan
from idsync.check.checker import EXACT_PROOF, CheckPass
from idsync.check.report import CheckReport, Method, SideMethod
from idsync.envelope import MAX_SAMPLES
from idsync.errors import IdsyncError, InterruptedRun
from idsync.ids import DUPLICATE_TEXT, PRIMES
from idsync.ledger import OBJECT_IDS, Range
from idsync.mongo.source import MongoSource
from idsync.mongo.values import encode_batch
from idsync.retry import with_retries
from idsync.spans import (
    Lazy,
    RangePool,
    Window,
    compare_others,
    object_id_windows,
    plan_ranges,
)
from idsync.target import Column, Target
from idsync.targets import range_connections

log = logging.getLogger("idsync")

Batch = tuple[list[str], list[object]]
FIGURES = ("source_ids", "target_ids", "missing", "orphans", "rejected")


def check_ranges(check: CheckPass, source: MongoSource, target: Target, column: Column) -> bool:
    """Compare ``check``'s sides by ranges if it can (True), else say why."""
    report, workers = check.report, check.settings.workers
    report.workers_reason = plan.why_not_ranges(
        check.settings,
        check.job,
        target,
        column,
        flavour=source.flavour,
        reads_by_index=source.reads_ranges_by_index,
    )
    if report.workers_reason is not None:
        log.info("[%s] --workers %d: one check: %s", check.job.name, workers,
                 report.workers_reason, extra={"job": check.job.name, "event": "plan"})  # fmt: skip
        return False
    parts = plan_ranges(source.object_id_span(), workers)
    reason = f"{workers} workers over {len(parts)} ranges of `_id`, each in `_id` order"
    report.plan, report.plan_reason, report.workers = "ranges", reason, workers
    report.proof = EXACT_PROOF
    side = SideMethod(Method.EXACT, reason)
    report.method = {"source": side, "target": side}
    RangeCheck(check, column).work(parts)
    report.ids_read_source, report.ids_read_target = report.source_ids, report.target_ids
    return True


class RangeCheck:
    def __init__(self, check: CheckPass, column: Column) -> None:
        self.check, self.column = check, column
        stop = check.reads.stop
        self.pool = RangePool(
            stop, lambda: range_connections(check.settings, check.job), self._interrupted
        )
        self.folding = threading.Lock()
        self.hex_others: frozenset[str] = frozenset()

    def work(self, parts: list[Range]) -> None:
        *ranges, others = parts
        self.pool.work(1, [others], self._part)
        self.pool.work(self.check.settings.workers, ranges, self._part)

    def _interrupted(self) -> InterruptedRun:
        return InterruptedRun(f"interrupted after {self.check.report.source_ids:,} ids compared")

    def _part(self, part: Range, connections: Lazy[tuple[MongoSource, Target]]) -> None:
        sub = CheckReport(job=self.check.job.name, run_id=self.check.report.run_id)

        def attempt() -> None:
            try:
                self._compare(part, sub, *connections.get())
            except IdsyncError:
                connections.close()
                raise

        try:
            with_retries(attempt, self.check.settings, sub, self.pool.halt, what=str(part))
        finally:
            self._fold(sub)

    def _compare(self, part: Range, sub: CheckReport, source: MongoSource, target: Target) -> None:
        if part.kind == OBJECT_IDS:
            batches = self._texts(source.range_id_batches(part.lo, part.hi), sub)
            read = target.read_between
            for window in object_id_windows(batches, read, part, self.hex_others):
                self._tally(sub, window)
            return
        listed = [t for texts in self._texts(source.other_id_batches(), sub) for t in texts]
        rest = target.buckets(self.column, PRIMES).others()
        window, self.hex_others = compare_others(listed, rest, target.present)
        self._tally(sub, window)

    def _texts(self, batches: Iterable[Batch], sub: CheckReport) -> Iterator[list[str]]:
        fit = self.column.fit
        for oids, others in batches:
            if self.pool.halt.is_set():
                raise self._interrupted()
            sub.source_ids += len(oids) + len(others)
            yield encode_batch(oids, others, fit, sub.reject)

    @staticmethod
    def _tally(sub: CheckReport, window: Window) -> None:
        sub.target_ids += window.present + len(window.orphans)  # distinct values, each once
        for text in window.missing:
            sub.add_missing(text)
        sub.orphans += len(window.orphans)
        for text in window.orphans[:MAX_SAMPLES]:
            if len(sub.orphan_samples) < MAX_SAMPLES:
                sub.orphan_samples.append(text)
        for text in window.duplicates:
            sub.reject(text, DUPLICATE_TEXT)

    def _fold(self, sub: CheckReport) -> None:
        report = self.check.report
        with self.folding:
            for name in FIGURES:
                setattr(report, name, getattr(report, name) + getattr(sub, name))
            report.missing_samples.extend(
                sub.missing_samples[: MAX_SAMPLES - len(report.missing_samples)]
            )
            report.orphan_samples.extend(
                sub.orphan_samples[: MAX_SAMPLES - len(report.orphan_samples)]
            )
            report.rejected_samples.extend(
                sub.rejected_samples[: MAX_SAMPLES - len(report.rejected_samples)]
            )
            report.retried += sub.retried
