"""Run history: one row per run, check or watch pass in MySQL (`idsync_runs`).

Written by the library at the end of each run, so a scheduler, a person or `idsync status` can
answer "did last night's run work?" from SQL. Writing it never fails a run: if the table is
missing (`idsync init` creates it) or MySQL is unreachable, a warning says so.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from idsync.config import Job, Settings
from idsync.errors import IdsyncError
from idsync.mysql.target import MySQLTarget
from idsync.urls import redact
from idsync.version import __version__

log = logging.getLogger(__name__)

TABLE = "idsync_runs"
SUCCESS = ("ok", "partial")
"""Statuses that count as a success: the run finished (partial: some ids rejected)."""

DDL = f"""CREATE TABLE IF NOT EXISTS `{TABLE}` (
  `id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `run_id` VARCHAR(32) NOT NULL,
  `job` VARCHAR(64) NOT NULL,
  `command` VARCHAR(16) NOT NULL,
  `started_at` DATETIME(3) NOT NULL,
  `finished_at` DATETIME(3) NOT NULL,
  `status` VARCHAR(16) NOT NULL,
  `exit_code` TINYINT NOT NULL,
  `dry_run` BOOL NOT NULL,
  `source_ids` BIGINT NULL,
  `missing` BIGINT NULL,
  `inserted` BIGINT NULL,
  `rejected` BIGINT NULL,
  `orphans` BIGINT NULL,
  `duration_s` DOUBLE NOT NULL,
  `error` TEXT NULL,
  `host` VARCHAR(255) NOT NULL,
  `version` VARCHAR(32) NOT NULL,
  KEY `job_started` (`job`, `started_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""

_COLUMNS = (
    "run_id", "job", "command", "started_at", "finished_at", "status", "exit_code", "dry_run",
    "source_ids", "missing", "inserted", "rejected", "orphans", "duration_s", "error", "host",
    "version",
)  # fmt: skip


@dataclass(frozen=True)
class RunRecord:
    """One row of `idsync_runs`."""

    run_id: str
    job: str
    command: str
    started_at: datetime
    finished_at: datetime
    status: str
    exit_code: int
    dry_run: bool
    source_ids: int | None
    missing: int | None
    inserted: int | None
    rejected: int | None
    orphans: int | None
    duration_s: float
    error: str | None
    host: str
    version: str

    @classmethod
    def from_report(cls, command: str, report: Mapping[str, Any]) -> RunRecord:
        """A record of any report's ``to_dict()`` (sync or check)."""
        started = datetime.fromisoformat(str(report["started_at"])).astimezone(UTC)
        duration = float(report.get("duration_s") or 0.0)
        return cls(
            run_id=str(report["run_id"]), job=str(report["job"]), command=command,
            started_at=started, finished_at=started + timedelta(seconds=duration),
            status=str(report["status"]), exit_code=int(report.get("exit_code") or 0),
            dry_run=bool(report.get("dry_run")), source_ids=report.get("source_ids"),
            missing=_count(report.get("missing")), inserted=report.get("inserted"),
            rejected=report.get("rejected"), orphans=_count(report.get("orphans")),
            duration_s=duration, error=report.get("error"), host=socket.gethostname(),
            version=__version__,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _COLUMNS}
        data["started_at"] = self.started_at.isoformat(timespec="seconds")
        data["finished_at"] = self.finished_at.isoformat(timespec="seconds")
        return data


def _count(value: object) -> int | None:
    return value if isinstance(value, int) else None


def create_table(target: MySQLTarget) -> bool:
    """Create `idsync_runs` if missing; True if it was created."""
    exists = target.query(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (target.url.database, TABLE),
    )
    if exists:
        return False
    target.query(DDL, (), f"creating {TABLE}")
    return True


def record(settings: Settings, job: Job, command: str, report: Mapping[str, Any]) -> bool:
    """Append one row; never raises. False (and a warning) if it could not be written."""
    row = RunRecord.from_report(command, report)
    if row.error:  # a second line of defence: a history row outlives any log
        row = replace(row, error=redact(row.error, settings.secrets))
    try:
        # A short timeout: when MySQL is what failed, the run has waited long enough.
        settings = replace(settings, connect_timeout_s=min(settings.connect_timeout_s, 3.0))
        with MySQLTarget(settings, job) as target:
            target.connect()
            values = [getattr(row, name) for name in _COLUMNS]
            values[3], values[4] = _naive(row.started_at), _naive(row.finished_at)
            marks = ", ".join(["%s"] * len(_COLUMNS))
            names = ", ".join(f"`{name}`" for name in _COLUMNS)
            target.query(f"INSERT INTO `{TABLE}` ({names}) VALUES ({marks})", values, "history")
            target.commit()
    except IdsyncError as exc:
        log.warning("[%s] run history not written: %s", job.name, exc)
        return False
    except Exception as exc:  # a history row must never replace the run's own error
        reason = redact(f"{type(exc).__name__}: {exc}", settings.secrets)
        log.warning("[%s] run history not written: %s", job.name, reason)
        return False
    return True


def _naive(moment: datetime) -> datetime:
    """UTC without tzinfo: DATETIME columns hold no zone, and idsync writes UTC only."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def recent(target: MySQLTarget, job: str | None, limit: int) -> list[RunRecord]:
    """The newest runs first, of one job or all."""
    names = ", ".join(f"`{name}`" for name in _COLUMNS)
    where, args = ("WHERE `job` = %s", [job]) if job else ("", [])
    rows = target.query(
        f"SELECT {names} FROM `{TABLE}` {where} ORDER BY `started_at` DESC, `id` DESC LIMIT %s",
        [*args, limit],
        "reading run history",
    )
    return [_from_row(row) for row in rows]


def last_success(
    target: MySQLTarget, job: str, commands: tuple[str, ...] = ("run", "watch")
) -> RunRecord | None:
    """The newest finished, real (not dry) pass of ``job`` by one of ``commands``."""
    names = ", ".join(f"`{name}`" for name in _COLUMNS)
    marks = ", ".join(["%s"] * len(commands))
    rows = target.query(
        f"SELECT {names} FROM `{TABLE}` WHERE `job` = %s AND `command` IN ({marks})"
        " AND `status` IN (%s, %s) AND NOT `dry_run` ORDER BY `finished_at` DESC LIMIT 1",
        [job, *commands, *SUCCESS],
        "reading run history",
    )
    return _from_row(rows[0]) if rows else None


def _from_row(row: tuple[Any, ...]) -> RunRecord:
    data = dict(zip(_COLUMNS, row, strict=True))
    data["started_at"] = data["started_at"].replace(tzinfo=UTC)
    data["finished_at"] = data["finished_at"].replace(tzinfo=UTC)
    data["dry_run"] = bool(data["dry_run"])
    return RunRecord(**data)
