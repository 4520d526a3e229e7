"""`sync()`: run a job to completion, retrying transient failures, and report."""

from __future__ import annotations

import logging
import threading

from idsync.config import Job, RunOptions, Settings
from idsync.errors import as_idsync_error
from idsync.mongo.source import ScanOrder
from idsync.mysql import history
from idsync.retry import with_retries
from idsync.run.passes import Progress, Silent, SyncPass
from idsync.run.report import SyncReport

log = logging.getLogger("idsync")

__all__ = ["Progress", "sync"]


def sync(
    job: Job,
    settings: Settings,
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    scan_order: ScanOrder | None = None,
    stop: threading.Event | None = None,
) -> SyncReport:
    """Run ``job`` and return its report.

    A transient failure (a server unreachable, a dropped connection, a timeout) is retried with a
    new pass, ``settings.retries`` times at most, after a growing pause; committed batches are not
    redone, since each pass starts by reading the target. Raises an
    :class:`~idsync.errors.IdsyncError` when it gives up, with the report so far attached as
    ``exc.report``; any other exception is raised as an
    :class:`~idsync.errors.UnexpectedError` naming its type (Ctrl-C stays a KeyboardInterrupt),
    the run recorded as failed, never as ok. Setting ``stop`` ends the run after its last
    committed batch (:class:`~idsync.errors.InterruptedRun`). A run that finishes with rejected
    ids returns normally with ``status == "partial"``.
    """
    options = options or RunOptions()
    stop = stop or threading.Event()
    report = SyncReport(job=job.name, dry_run=options.dry_run)
    context = {"job": job.name, "run_id": report.run_id}
    log.info("[%s] start", job.name, extra={**context, "event": "start"})
    try:
        bar = progress or Silent()

        def attempt() -> None:
            SyncPass(job, settings, options, report, bar, stop=stop).execute(scan_order)

        with_retries(attempt, settings, report, stop)
    except BaseException as exc:
        error = as_idsync_error(exc)
        report.fail(error)
        exc.report = error.report = report  # type: ignore[attr-defined]
        log.error("[%s] error: %s", job.name, error, extra={**context, "event": "error"})
        if error is exc or not isinstance(exc, Exception):
            raise
        raise error from exc
    finally:
        report.finish()
        if options.record_history:
            history.record(settings, job, options.history_command, report.to_dict())
        counts = {"inserted": report.inserted, "rejected": report.rejected}
        log.info(
            "[%s] job end: %s, %d inserted, %d rejected, %.2f s",
            job.name, report.status, report.inserted, report.rejected, report.duration_s,
            extra={**context, "event": "end", "counts": counts, "duration_s": report.duration_s},
        )  # fmt: skip
    return report
