"""Which server package serves a target, and the one write every command makes through it.

The only module above the server packages that names them: features ask here for a
:class:`~idsync.target.Target` and never import a driver's package themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from idsync.config import Job, Settings
from idsync.errors import IdsyncError
from idsync.mongo.source import MongoSource, ScanOrder
from idsync.runs import RunRecord
from idsync.spans import Lazy
from idsync.target import Target
from idsync.urls import PostgresURL, redact

log = logging.getLogger(__name__)


def open_target(settings: Settings, job: Job) -> Target:
    """The job's target, not yet connected (``connect()`` it, or use it in a ``with``): the
    server package is chosen by the URL's scheme; each imports its driver only when chosen."""
    url = settings.target
    if isinstance(url, PostgresURL):
        from idsync.postgres.target import PostgresTarget  # noqa: PLC0415 (psycopg when asked)

        return PostgresTarget(settings, job, url)
    from idsync.mysql.target import MySQLTarget  # noqa: PLC0415 (MySQLdb when asked)

    return MySQLTarget(settings, job)


def range_connections(settings: Settings, job: Job) -> Lazy[tuple[MongoSource, Target]]:
    """A range worker's own source (read by the `_id` index) and target (connected and
    inspected), opened when first needed and again after a failure."""

    def opener() -> tuple[MongoSource, Target]:
        source = MongoSource(settings, job, ScanOrder.ID_INDEX)
        target = open_target(settings, job)
        try:
            target.connect()
            target.inspect()
        except BaseException:
            closer((source, target))
            raise
        return source, target

    def closer(both: tuple[MongoSource, Target]) -> None:
        both[0].close()
        both[1].close()

    return Lazy(opener, closer)


def record_run(settings: Settings, job: Job, command: str, report: Mapping[str, Any]) -> bool:
    """Append one history row; never raises. False (and a warning) if it could not be written:
    the table is missing (`idsync init` creates it) or the server is what failed."""
    row = RunRecord.from_report(command, report)
    if row.error:  # a second line of defence: a history row outlives any log
        row = replace(row, error=redact(row.error, settings.secrets))
    try:
        # A short timeout: when the target is what failed, the run has waited long enough.
        settings = replace(settings, connect_timeout_s=min(settings.connect_timeout_s, 3.0))
        with open_target(settings, job) as target:
            target.connect()
            target.record_run(row)
    except IdsyncError as exc:
        # When the target is what failed, its error was said already: once is enough.
        said = str(exc) == report.get("error")
        reason = "the target is what failed (above)" if said else str(exc)
        log.warning("[%s] run history not written: %s", job.name, reason)
        return False
    except Exception as exc:  # a history row must never replace the run's own error
        reason = redact(f"{type(exc).__name__}: {exc}", settings.secrets)
        log.warning("[%s] run history not written: %s", job.name, reason)
        return False
    return True
