"""Run history as data: one record per run, check or watch pass, whatever stores it.

Written at the end of each run (:func:`idsync.targets.record_run`), so a scheduler, a person or
`idsync status` can answer "did last night's run work?" from SQL.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from idsync.envelope import SUCCESS
from idsync.version import __version__

__all__ = ["FIELDS", "SUCCESS", "RunRecord"]

FIELDS = (
    "run_id", "job", "command", "started_at", "finished_at", "status", "exit_code", "dry_run",
    "source_ids", "missing", "inserted", "rejected", "orphans", "duration_s", "error", "host",
    "version", "deleted",
)  # fmt: skip
ADDED = ("deleted",)
"""Columns newer than the table's first version: `idsync init` adds them to an older table;
until then a run writes and reads the others."""


def fields_of(present: set[str]) -> tuple[str, ...]:
    """The fields an `idsync_runs` table with ``present`` of the :data:`ADDED` columns holds."""
    return tuple(name for name in FIELDS if name not in ADDED or name in present)


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
    deleted: int | None = None
    """Orphans deleted, by a run in mirror mode; None otherwise."""

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
            version=__version__, deleted=report.get("deleted") if report.get("mirror") else None,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in FIELDS}
        if data["deleted"] is None:
            del data["deleted"]  # not a mirroring run: as before the column existed
        data["started_at"] = self.started_at.isoformat(timespec="seconds")
        data["finished_at"] = self.finished_at.isoformat(timespec="seconds")
        return data


def _count(value: object) -> int | None:
    return value if isinstance(value, int) else None
