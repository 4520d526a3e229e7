"""`run --workers N`: the `_id` ranges of one run worked by N threads at once.

The pass that calls this has connected, inspected the column and taken the run lock (held on
its connection until the run ends). The ObjectIds are cut into ranges by creation time
(:mod:`idsync.spans`); the range of the other `_id`s is worked first, then N threads, each with
its own source and target connections, take ObjectId ranges from a queue until none is left.
The drivers release the GIL while they wait, so the threads' reads and inserts overlap.

A range's transient failure is retried on new connections (``settings.retries`` times), the
others going on meanwhile: a range done again inserts nothing twice (ranges need the column's
UNIQUE index). Any other failure, or ``stop``, ends every thread after its committed batch.
Where ranges cannot serve, the run is one pass, and says why (:func:`why_one_pass`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from idsync import plan
from idsync.envelope import MAX_SAMPLES
from idsync.errors import IdsyncError, InterruptedRun
from idsync.ids import DUPLICATE_TEXT, PRIMES
from idsync.ledger import OBJECT_IDS, Range
from idsync.mongo.source import MongoSource, ScanOrder
from idsync.retry import with_retries
from idsync.run.batches import BatchWriter
from idsync.run.passes import MissingSink, Progress, SyncPass, _waited
from idsync.run.readahead import ReadAhead
from idsync.run.report import SyncReport
from idsync.spans import (
    Lazy,
    RangePool,
    Window,
    compare_others,
    keep_samples,
    object_id_windows,
    plan_ranges,
)
from idsync.target import Column, Target
from idsync.targets import range_connections

log = logging.getLogger("idsync")
_T = TypeVar("_T")

COUNTS = (
    "source_ids",
    "present",
    "missing",
    "inserted",
    "restored",
    "concurrent",
    "orphans",
    "batches",
)


def why_one_pass(run: SyncPass, source: MongoSource, target: Target, column: Column) -> str | None:
    """Why ``run`` cannot be worked by ranges; None when it can."""
    settings, options = run.settings, run.options
    if options.dry_run:
        return "a dry run predicts its inserts in one pass"
    if run.orphans.on:
        return "mirror mode (--delete-orphans) holds the orphans of one pass to delete them"
    if run._insert_limit() is not None:
        return "--max-inserts decides on every missing id before inserting any: one pass"
    return plan.why_not_ranges(
        settings,
        run.job,
        target,
        column,
        flavour=source.flavour,
        reads_by_index=source.reads_ranges_by_index,
    )


def run_ranges(run: SyncPass, source: MongoSource, target: Target, column: Column) -> bool:
    """Work ``run`` by ranges if it can (True), else say why and leave it to one pass."""
    report, workers = run.report, run.settings.workers
    report.workers_reason = why_one_pass(run, source, target, column)
    if report.workers_reason is not None:
        report.workers = 1
        log.info("[%s] --workers %d: one pass: %s", run.job.name, workers, report.workers_reason,
                 extra={"job": run.job.name, "run_id": report.run_id, "event": "plan"})  # fmt: skip
        return False
    parts = plan_ranges(source.object_id_span(), workers)
    report.plan, report.workers = "ranges", workers
    report.plan_reason = f"{workers} workers over {len(parts)} ranges of `_id`, each by its index"
    report.source["scan"] = str(ScanOrder.ID_INDEX)
    log.info("[%s] %s", run.job.name, report.plan_reason,
             extra={"job": run.job.name, "run_id": report.run_id, "event": "plan"})  # fmt: skip
    RangeRun(run, column).work(parts)
    return True


class _Locked:
    """A progress bar or a missing-ids sink told by many threads, one at a time."""

    def __init__(self, progress: Progress, missing: MissingSink | None) -> None:
        self.progress, self.missing, self.lock = progress, missing, threading.Lock()

    def start(self, phase: str, total: int | None) -> None:
        with self.lock:
            self.progress.start(phase, total)

    def advance(self, phase: str, count: int) -> None:
        with self.lock:
            self.progress.advance(phase, count)

    def begin(self) -> None:
        pass  # a dry run is one pass

    def add(self, texts: list[str]) -> None:
        with self.lock:
            if self.missing is not None:
                self.missing.add(texts)


class RangeRun:
    """The ranges of one pass, worked by ``settings.workers`` threads."""

    def __init__(self, run: SyncPass, column: Column) -> None:
        self.run, self.column = run, column
        self.pool = RangePool(
            run.stop, lambda: range_connections(run.settings, run.job), self._interrupted
        )
        self.halt = self.pool.halt
        self.shared = _Locked(run.progress, run.missing)
        self.folding = threading.Lock()
        self.hex_others: frozenset[str] = frozenset()

    def work(self, parts: list[Range]) -> None:
        *ranges, others = parts
        self.run.progress.start("source", None)
        self.pool.work(1, [others], self._part)  # first: its string ids shaped like ObjectIds
        self.pool.work(self.run.settings.workers, ranges, self._part)
        report = self.run.report
        if report.attempts == 1:
            report.target_ids_before = report.present + report.orphans
        waited = report.phases.get("source_wait_s", 0.0)
        written = report.phases.get("target_read_s", 0.0) + report.phases.get("insert_s", 0.0)
        report.bound_by = "source" if waited > written else "target"

    def _interrupted(self) -> InterruptedRun:
        report = self.run.report
        return InterruptedRun(
            f"interrupted after {report.batches} committed batches"
            f" ({report.inserted:,} ids inserted); run again to finish"
        )

    def _part(self, part: Range, connections: Lazy[tuple[MongoSource, Target]]) -> None:
        """One range, tried again on new connections after a transient failure."""
        run = self.run
        sub = SyncReport(job=run.job.name, run_id=run.report.run_id)

        def attempt() -> None:
            before = sub.inserted  # what failed attempts committed is no longer missing
            try:
                source, target = connections.get()
                self._compare(part, sub, source, target)
            except IdsyncError:
                connections.close()
                raise
            sub.missing += before

        try:
            with_retries(attempt, run.settings, sub, self.halt, what=str(part))
        finally:
            self._fold(sub)

    def _compare(self, part: Range, sub: SyncReport, source: MongoSource, target: Target) -> None:
        run, fit = self.run, self.column.fit
        one = SyncPass(run.job, run.settings, run.options, sub, self.shared, stop=self.halt,
                       missing=self.shared if run.missing else None)  # fmt: skip
        writer = BatchWriter(one, target, self.column, None)
        if part.kind == OBJECT_IDS:
            with ReadAhead(source.range_id_batches(part.lo, part.hi)) as batches:
                texts = one._encode(_waited(batches, sub), fit)
                read = _timed(sub, "target_read_s", target.read_between)
                for window in object_id_windows(texts, read, part, self.hex_others):
                    self._tally(sub, window, writer)
        else:
            listed = [t for texts in one._encode(source.other_id_batches(), fit) for t in texts]
            with sub.timing("target_read_s"):
                rest = list(target.buckets(self.column, PRIMES).others())
            window, self.hex_others = compare_others(listed, rest, target.present)
            self._tally(sub, window, writer)
        writer.flush()
        sub.missing -= writer.rejected

    @staticmethod
    def _tally(sub: SyncReport, window: Window, writer: BatchWriter) -> None:
        sub.present += window.present
        sub.missing += len(window.missing)
        sub.orphans += len(window.orphans)
        for text in window.orphans[:MAX_SAMPLES]:
            sub.orphan(text)
        for text in window.duplicates:
            sub.reject(text, DUPLICATE_TEXT)
        writer.extend(window.missing)

    def _fold(self, sub: SyncReport) -> None:
        """A range's figures into the run's report (what it committed, even if it failed)."""
        report = self.run.report
        with self.folding:
            for name in COUNTS:
                setattr(report, name, getattr(report, name) + getattr(sub, name))
            report.rejected += sub.rejected
            keep_samples(report.rejected_samples, sub.rejected_samples)
            keep_samples(report.missing_samples, sub.missing_samples)
            keep_samples(report.orphan_samples, sub.orphan_samples)
            report.retried += sub.retried
            for name, seconds in sub.phases.items():
                report.add_phase(name, seconds)


def _timed(
    report: SyncReport, phase: str, read: Callable[[str, str], _T]
) -> Callable[[str, str], _T]:
    def timed(low: str, high: str) -> _T:
        with report.timing(phase):
            return read(low, high)

    return timed
