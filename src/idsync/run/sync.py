"""`sync()`: run a job to completion, retrying transient failures, and report."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from idsync.config import Job, RunOptions, Settings
from idsync.envelope import Command, enveloped
from idsync.mongo.source import ScanOrder
from idsync.run.passes import InFlight, MissingSink, Progress, Silent, SyncPass
from idsync.run.report import SyncReport
from idsync.targets import record_run

log = logging.getLogger("idsync")

__all__ = ["MissingSink", "Progress", "sync"]

RUN = Command(history="run", label="", event="")


def sync(
    job: Job,
    settings: Settings,
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    scan_order: ScanOrder | None = None,
    stop: threading.Event | None = None,
    report: SyncReport | None = None,
    missing: MissingSink | None = None,
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
    ids returns normally with ``status == "partial"``. A ``report`` passed in is the one filled
    in, so that a caller has it whatever is raised. ``missing`` is told the missing ids that
    each committed batch stored (a dry run: would store).
    """
    options = options or RunOptions()
    stop = stop or threading.Event()
    report = report or SyncReport(job=job.name, dry_run=options.dry_run)
    bar = progress or Silent()

    doubt = InFlight()  # batches whose commit a failed pass did not see confirmed

    def attempt() -> None:
        SyncPass(
            job, settings, options, report, bar, stop=stop, missing=missing, doubt=doubt
        ).execute(scan_order)

    def record(figures: Mapping[str, Any]) -> None:
        record_run(settings, job, options.history_command, figures)

    recorder = record if options.record_history else None
    return enveloped(
        report, attempt, settings=settings, command=RUN, record=recorder, stop=stop,
        stop_is_the_end=options.history_command == "watch",  # a watcher's pass
    )  # fmt: skip
