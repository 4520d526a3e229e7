"""One pass of a job: stream source ids through the diff, insert what is missing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from idsync import plan
from idsync.config import Job, RunOptions, Settings
from idsync.diff import DiffCounts, Tag, diff_batches
from idsync.envelope import MAX_SAMPLES
from idsync.errors import GuardError, InterruptedRun
from idsync.ids import DUPLICATE_TEXT, ColumnFit, shown_text
from idsync.merge import merge_batches
from idsync.mongo.source import MongoSource, ScanOrder
from idsync.mongo.values import encode_batch
from idsync.run.batches import BatchWriter
from idsync.run.orphans import Orphans
from idsync.run.readahead import ReadAhead
from idsync.run.report import SyncReport
from idsync.target import Column, Target
from idsync.targets import open_target

log = logging.getLogger("idsync")


class Progress(Protocol):
    """Told how far a run has come; the CLI draws it, a library caller may ignore it."""

    def start(self, phase: str, total: int | None) -> None: ...

    def advance(self, phase: str, count: int) -> None: ...


class MissingSink(Protocol):
    """Told the missing ids a run stored (a dry run: would store), batch by batch as each
    commits (`run --list-missing`). A retried pass lists only what the failed one did not
    commit: the ids it did are no longer missing."""

    def begin(self) -> None:
        """A dry run's pass begins: what an earlier, failed pass listed is listed again."""

    def add(self, texts: list[str]) -> None: ...


class Silent:
    """A Progress that shows nothing."""

    def start(self, phase: str, total: int | None) -> None:
        pass

    def advance(self, phase: str, count: int) -> None:
        pass


@dataclass
class InFlight:
    """The batches in flight when a pass failed: committed or not, unknown (a lost reply)."""

    inserts: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    """Orphans being deleted (or marked)."""


class SyncPass:
    """The parts of one run, wired together once."""

    def __init__(
        self,
        job: Job,
        settings: Settings,
        options: RunOptions,
        report: SyncReport,
        progress: Progress,
        *,
        stop: threading.Event,
        missing: MissingSink | None = None,
        doubt: InFlight | None = None,
    ) -> None:
        self.job, self.settings, self.options = job, settings, options
        self.missing = missing
        self.doubt = doubt if doubt is not None else InFlight()
        self.report, self.progress, self.stop = report, progress, stop
        self.shown = not isinstance(progress, Silent)
        self.earlier_inserts = report.inserted  # committed by failed attempts of this run
        self.orphans = Orphans(self)

    def execute(self, scan_order: ScanOrder | None) -> None:
        job, report = self.job, self.report
        with (
            MongoSource(self.settings, job, scan_order) as source,
            open_target(self.settings, job) as target,
        ):
            with report.timing("connect_s"):
                # The source is asked first, so an unreachable MongoDB leaves MySQL untouched.
                info = source.ping()
                report.source = {
                    "address": source.address,
                    "database": source.database,
                    "collection": job.collection,
                    "field": job.field,
                    "flavour": info.flavour,
                    "version": info.version,
                    "scan": str(source.order),
                }
                self.report.target = {  # named even when it cannot be reached
                    "address": target.address,
                    "database": target.database,
                    "table": job.table,
                    "column": job.column,
                }
                target.connect()
                column = self._inspect(target)
                self.orphans.require(column)
            if not self.options.dry_run:
                with report.timing("lock_wait_s"):
                    target.lock(self.settings.lock_timeout_s, self.stop)
                self._settle(target)
            if self.settings.workers > 1 and self._ranges(source, target, column):
                self._guard_empty_source()
                return
            counted = source.estimated_count()  # also the progress bar's total
            estimate = counted if counted is not None else target.estimated_rows()
            report.plan, report.plan_reason = plan.choose(
                self.settings, job, target, column, estimate
            )
            if report.plan == "merge":
                self._merge(source, target, column, counted)
            else:
                self._set(source, target, column, counted)
            self._guard_empty_source()
            self.orphans.finish(source, target)

    def _ranges(self, source: MongoSource, target: Target, column: Column) -> bool:
        """Worked by ``settings.workers`` threads, a range each (True), where ranges serve."""
        from idsync.run.parallel import run_ranges  # noqa: PLC0415 (it imports this module)

        return run_ranges(self, source, target, column)

    def _set(
        self, source: MongoSource, target: Target, column: Column, counted: int | None
    ) -> None:
        """The target's ids read into a set, then the source streamed against it."""
        report = self.report
        # The source's first batches are read while the target's ids are.
        with ReadAhead(source.value_batches()) as batches:
            with report.timing("target_read_s"):
                existing = self._read_target(target)
            self.orphans.begin(report.target_ids_before)
            self.progress.start("source", counted if self.shown else None)
            texts = self._encode(_waited(batches, report), column.fit)
            writer = BatchWriter(self, target, column, self._insert_limit())
            counts = DiffCounts()
            unique = self.job.field == "_id"
            tagged = diff_batches(texts, existing, counts, unique_source=unique)
            self._timed_stream(tagged, counts, writer)

    def _merge(
        self, source: MongoSource, target: Target, column: Column, counted: int | None
    ) -> None:
        """Both sides in `_id` order, a batch of each in memory: the unordered source ids (not
        ObjectIds: few) first, then the ObjectIds merged with the target's pages."""
        report = self.report
        report.source["scan"] = str(ScanOrder.ID_INDEX)  # the ObjectIds', whatever was planned
        self.progress.start("source", counted if self.shown else None)
        others = [t for texts in self._encode(source.other_id_batches(), column.fit) for t in texts]
        if self.report.attempts == 1 and (
            self.options.max_inserts_fraction is not None or self.orphans.on
        ):
            # A share of the table is a share of its real size, not of an estimate: counted.
            with report.timing("target_read_s"):
                self.report.target_ids_before = target.count_values()
        self.orphans.begin(report.target_ids_before)
        writer = BatchWriter(self, target, column, self._insert_limit())
        with ReadAhead(source.ordered_id_batches()) as batches:
            ordered = self._encode(_waited(batches, report), column.fit)
            rows = self._read_pages(target)
            counts = DiffCounts()
            self._timed_stream(merge_batches(ordered, others, rows, counts), counts, writer)

    def _read_pages(self, target: Target) -> Iterator[list[str]]:
        """The target's pages in order, counted and timed as they come."""
        report, seen = self.report, 0
        report.add_phase("target_read_s", 0.0)
        pages = iter(target.read_ordered_batches(self.settings.read_batch_size))
        while True:
            with report.timing("target_read_s"):
                page = next(pages, None)
            if page is None:
                break
            seen += len(page)
            self.progress.advance("target", len(page))
            yield page
        if report.attempts == 1:
            report.target_ids_before = seen

    def _timed_stream(
        self, tagged: Iterator[tuple[Tag, list[str]]], counts: DiffCounts, writer: BatchWriter
    ) -> None:
        """The stream, its time split: waiting for the source, inserting, and the rest (the
        diff, encoding) as ``diff_s``; then which side bounded the run."""
        phases, started = self.report.phases, time.perf_counter()
        spent_elsewhere = ("source_wait_s", "insert_s", "target_read_s")  # a merge reads as it goes
        before = {name: phases.get(name, 0.0) for name in spent_elsewhere}
        try:
            self._stream(tagged, counts, writer)
        finally:
            spent = {name: phases.get(name, 0.0) - was for name, was in before.items()}
            self.report.add_phase("diff_s", time.perf_counter() - started - sum(spent.values()))
        target_s = phases.get("target_read_s", 0.0) + phases.get("insert_s", 0.0)
        self.report.bound_by = "source" if phases["source_wait_s"] > target_s else "target"

    def _inspect(self, target: Target) -> Column:
        job, column = self.job, target.inspect()
        self.report.target.update(collation=column.collation, unique_index=column.unique)
        if column.triggers:
            self.report.warnings.append(
                f"{job.table} has {', '.join(column.triggers)}: each batch is verified, since"
                " these may store another text than was sent, or hide what was stored"
            )
        if not column.unique:
            self.report.warnings.append(
                f"{job.table}.{job.column} has no UNIQUE index: other writers may add duplicates;"
                f" add one: ALTER TABLE {job.table} ADD UNIQUE ({job.column})"
            )
        return column

    def _read_target(self, target: Target) -> set[str]:
        self.progress.start("target", None)
        existing: set[str] = set()
        for texts in target.read_id_batches():
            existing.update(texts)
            self.progress.advance("target", len(texts))  # as it reads: a long read shows
        if self.report.attempts == 1:
            self.report.target_ids_before = len(existing)
        return existing

    def _insert_limit(self) -> int | None:
        """The most ids this run may insert, from --max-inserts (count or share of the target)."""
        options = self.options
        if options.force:
            return None
        limits = [options.max_inserts] if options.max_inserts is not None else []
        if options.max_inserts_fraction is not None:
            limits.append(int(options.max_inserts_fraction * self.report.target_ids_before))
        return min(limits) if limits else None

    def _encode(
        self, batches: Iterable[tuple[list[str], list[object]]], fit: ColumnFit
    ) -> Iterator[list[str]]:
        """Canonical text of each value that the column can hold exactly; the rest are rejected."""
        report, stop = self.report, self.stop
        for oids, others in batches:
            if stop.is_set():
                raise InterruptedRun(
                    f"interrupted after {report.batches} committed batches "
                    f"({report.inserted:,} ids inserted); run again to finish"
                )
            report.source_ids += len(oids) + len(others)
            self.progress.advance("source", len(oids) + len(others))
            yield encode_batch(oids, others, fit, report.reject)

    def _stream(
        self, tagged: Iterator[tuple[Tag, list[str]]], counts: DiffCounts, writer: BatchWriter
    ) -> None:
        report = self.report
        if self.missing is not None and self.options.dry_run:
            self.missing.begin()
        for tag, texts in tagged:
            if tag is Tag.MISSING:
                writer.extend(texts)
            elif tag is Tag.DUPLICATE:
                for text in texts:
                    report.reject(text, DUPLICATE_TEXT)
            else:
                for text in texts:
                    report.orphan(text)
                self.orphans.add(texts)
        report.present, report.orphans = counts.present, counts.orphans
        report.missing = counts.missing + self.earlier_inserts
        if writer.refused:
            raise GuardError(
                f"{counts.missing:,} ids are missing, more than the limit of {writer.limit:,}"
                f" (target has {report.target_ids_before:,}); nothing inserted;"
                " --force to insert them"
            )
        writer.flush()
        report.missing -= writer.rejected  # missing counts what can be stored

    def _settle(self, target: Target) -> None:
        """The batch in flight when the previous pass failed may have committed, its reply
        lost: what of it is stored now is taken for this run's (the run lock keeps other runs
        out; a watcher's batch could land one meanwhile, counted here too). The rest is missing
        still: this pass's diff finds it, never a blind insert (a column without a UNIQUE index
        would store it twice)."""
        self.orphans.settle(target, self.doubt.deletes)
        if not self.doubt.inserts:
            return
        stored = target.present(self.doubt.inserts)
        landed = [text for text in self.doubt.inserts if text in stored]
        self.doubt.inserts.clear()
        if landed:
            self.report.batches += 1
            self.report.inserted += len(landed)
            self.earlier_inserts += len(landed)
            self.stored(landed)

    def stored(self, texts: list[str]) -> None:
        """``texts`` were missing and are stored now (a dry run: would be)."""
        if self.missing is not None and texts:
            self.missing.add(texts)
        samples = self.report.missing_samples
        samples.extend(shown_text(text) for text in texts[: MAX_SAMPLES - len(samples)])

    def _guard_empty_source(self) -> None:
        job, report = self.job, self.report
        if report.source_ids:
            return
        log.info(
            "[%s] No %s found", job.name, job.noun, extra={"job": job.name, "run_id": report.run_id}
        )
        if report.target_ids_before and not self.options.allow_empty_source:
            raise GuardError(
                f"source {job.collection}.{job.field} has no ids while {job.table} has "
                f"{report.target_ids_before:,}: wrong database or collection? "
                "(--allow-empty-source to accept)"
            )


def _waited(
    batches: Iterable[tuple[list[str], list[object]]], report: SyncReport
) -> Iterator[tuple[list[str], list[object]]]:
    """``batches``, the time spent waiting for each added to ``source_wait_s``."""
    report.add_phase("source_wait_s", 0.0)
    batches = iter(batches)
    while True:
        with report.timing("source_wait_s"):
            batch = next(batches, None)
        if batch is None:
            return
        yield batch
