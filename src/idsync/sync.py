"""One pass of a job: stream source ids through the diff, insert what is missing, report."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Protocol

from idsync.config import Job, RunOptions, Settings
from idsync.diff import DiffCounts, Tag, diff_ids
from idsync.errors import GuardError, IdsyncError
from idsync.ids import ColumnFit, UnsupportedId, describe, encode_id
from idsync.report import SyncReport
from idsync.source import MongoSource, ScanOrder
from idsync.target import Column, MySQLTarget

log = logging.getLogger("idsync")


class Progress(Protocol):
    """Told how far a run has come; the CLI draws it, a library caller may ignore it."""

    def start(self, phase: str, total: int | None) -> None: ...

    def advance(self, phase: str, count: int) -> None: ...


class _Silent:
    def start(self, phase: str, total: int | None) -> None:
        pass

    def advance(self, phase: str, count: int) -> None:
        pass


def sync(
    job: Job,
    settings: Settings,
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    scan_order: ScanOrder | None = None,
) -> SyncReport:
    """Run ``job`` once and return its report.

    Raises an :class:`~idsync.errors.IdsyncError` on failure, with the report (figures up to the
    failure, committed batches included) attached as ``exc.report``. A run that finishes with
    rejected ids returns normally with ``status == "partial"``.
    """
    options = options or RunOptions()
    report = SyncReport(job=job.name, dry_run=options.dry_run)
    prefix = f"[{job.name}]"
    log.info("%s start", prefix, extra={"job": job.name, "run_id": report.run_id})
    try:
        _Pass(job, settings, options, report, progress or _Silent()).execute(scan_order)
    except IdsyncError as exc:
        report.fail(exc)
        exc.report = report  # type: ignore[attr-defined]
        log.error("%s error: %s", prefix, exc, extra={"job": job.name, "run_id": report.run_id})
        raise
    finally:
        report.finish()
        log.info(
            "%s job end: %s, %d inserted, %d rejected, %.2f s",
            prefix,
            report.status,
            report.inserted,
            report.rejected,
            report.duration_s,
            extra={
                "job": job.name,
                "run_id": report.run_id,
                "event": "end",
                "counts": {"inserted": report.inserted, "rejected": report.rejected},
            },
        )
    return report


class _Pass:
    """The parts of one run, wired together once."""

    def __init__(
        self,
        job: Job,
        settings: Settings,
        options: RunOptions,
        report: SyncReport,
        progress: Progress,
    ) -> None:
        self.job, self.settings, self.options = job, settings, options
        self.report, self.progress = report, progress
        self.shown = not isinstance(progress, _Silent)

    def execute(self, scan_order: ScanOrder | None) -> None:
        job, report = self.job, self.report
        with (
            MongoSource(self.settings, job, scan_order) as source,
            MySQLTarget(self.settings, job) as target,
        ):
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
            target.connect()
            column = self._inspect(target)
            if not self.options.dry_run:
                target.lock(self.settings.lock_timeout_s)
            existing = self._read_target(target)
            self.progress.start("source", source.estimated_count() if self.shown else None)
            values = self._encode(source.values(), column.fit)
            self._stream(values, existing, _Writer(self, target))
            self._guard_empty_source()

    def _inspect(self, target: MySQLTarget) -> Column:
        job, column = self.job, target.inspect()
        self.report.target = {
            "address": target.address,
            "database": target.url.database,
            "table": job.table,
            "column": job.column,
            "collation": column.collation,
            "unique_index": column.unique,
        }
        if not column.unique:
            self.report.warnings.append(
                f"{job.table}.{job.column} has no UNIQUE index: other writers may add duplicates;"
                f" add one: ALTER TABLE {job.table} ADD UNIQUE ({job.column})"
            )
        return column

    def _read_target(self, target: MySQLTarget) -> set[str]:
        self.progress.start("target", None)
        existing = set(target.read_ids())
        self.progress.advance("target", len(existing))
        self.report.target_ids_before = len(existing)
        return existing

    def _encode(self, values: Iterable[object], fit: ColumnFit) -> Iterator[str]:
        """Canonical text of each value that the column can hold exactly; the rest are rejected."""
        report, seen = self.report, 0
        for value in values:
            seen += 1
            if seen % 10_000 == 0:
                report.source_ids = seen
                self.progress.advance("source", 10_000)
            try:
                text = encode_id(value)
            except UnsupportedId as exc:
                report.reject(describe(value), exc.reason)
                continue
            problem = fit.problem(text)
            if problem is not None:
                report.reject(describe(text), problem)
                continue
            yield text
        report.source_ids = seen

    def _stream(self, values: Iterable[str], existing: set[str], writer: _Writer) -> None:
        counts, report = DiffCounts(), self.report
        for tag, text in diff_ids(values, existing, counts, unique_source=self.job.field == "_id"):
            if tag is Tag.MISSING:
                writer.add(text)
            elif tag is Tag.DUPLICATE:
                report.reject(text, "another source id has the same text (e.g. int 5 and '5')")
            else:
                report.orphan(text)
        writer.flush()
        report.present, report.missing, report.orphans = (
            counts.present,
            counts.missing,
            counts.orphans,
        )

    def _guard_empty_source(self) -> None:
        job, report = self.job, self.report
        if report.source_ids:
            return
        noun = "clusters" if job.collection == "cluster_trips" else f"ids in {job.collection}"
        log.info(
            "[%s] No %s found", job.name, noun, extra={"job": job.name, "run_id": report.run_id}
        )
        if report.target_ids_before and not self.options.allow_empty_source:
            raise GuardError(
                f"source {job.collection}.{job.field} has no ids while {job.table} has "
                f"{report.target_ids_before:,}: wrong database or collection? "
                "(--allow-empty-source to accept)"
            )


class _Writer:
    """Collects missing ids into batches; inserts and commits each (or, in a dry run, counts)."""

    def __init__(self, run: _Pass, target: MySQLTarget) -> None:
        self.run, self.target = run, target
        self.batch: list[str] = []
        self.log_ids = run.options.log_ids and log.isEnabledFor(logging.INFO)

    def add(self, text: str) -> None:
        self.batch.append(text)
        if len(self.batch) >= self.run.job.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        if self.run.options.dry_run:
            return
        result = self.target.insert_batch(batch)
        report = self.run.report
        report.batches += 1
        report.inserted += result.inserted
        report.concurrent += max(0, len(result.landed) - result.inserted)
        for text, reason in result.rejected:
            report.reject(text, reason)
        self.run.progress.advance("insert", result.inserted)
        if self.log_ids:
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
        log.info("%s", _InsertedLines(f"[{name}] Inserted {column}: ", landed), extra=extra)


class _InsertedLines:
    """The original job's per-id lines, joined only if a handler formats the record."""

    def __init__(self, prefix: str, ids: list[str]) -> None:
        self.prefix, self.ids = prefix, ids

    def __str__(self) -> str:
        return "\n".join(self.prefix + text for text in self.ids)
