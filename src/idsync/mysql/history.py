"""The runs history table (`idsync_runs`) in MySQL: create it, append a row, read it back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from idsync.mysql import dialect
from idsync.mysql.connection import Connection
from idsync.runs import FIELDS, SUCCESS, RunRecord
from idsync.target import RUNS_TABLE as RUNS_TABLE_NAME

TABLE = RUNS_TABLE_NAME
DDL = dialect.RUNS_DDL


def create_table(conn: Connection) -> bool:
    """Create `idsync_runs` if missing; True if it was created."""
    if conn.fetch(dialect.TABLE_EXISTS, (conn.database, TABLE)):
        return False
    conn.execute(DDL, (), f"creating {TABLE}")
    return True


def append(conn: Connection, row: RunRecord) -> None:
    """Append ``row`` and commit."""
    values = [getattr(row, name) for name in FIELDS]
    values[3], values[4] = _naive(row.started_at), _naive(row.finished_at)
    conn.execute(dialect.insert_run(FIELDS), values, "history")
    conn.commit()


def _naive(moment: datetime) -> datetime:
    """UTC without tzinfo: DATETIME columns hold no zone, and idsync writes UTC only."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def recent(conn: Connection, job: str | None, limit: int) -> list[RunRecord]:
    """The newest runs first, of one job or all."""
    args: list[object] = [job, limit] if job else [limit]
    rows = conn.fetch(dialect.recent_runs(FIELDS, job is not None), args, "reading run history")
    return [_from_row(row) for row in rows]


def last_success(conn: Connection, job: str, commands: tuple[str, ...]) -> RunRecord | None:
    """The newest finished, real (not dry) pass of ``job`` by one of ``commands``."""
    statuses = sorted(str(status) for status in SUCCESS)
    sql = dialect.last_success(FIELDS, len(commands), len(statuses))
    rows = conn.fetch(sql, [job, *commands, *statuses], "reading run history")
    return _from_row(rows[0]) if rows else None


def _from_row(row: tuple[Any, ...]) -> RunRecord:
    data = dict(zip(FIELDS, row, strict=True))
    data["started_at"] = data["started_at"].replace(tzinfo=UTC)
    data["finished_at"] = data["finished_at"].replace(tzinfo=UTC)
    data["dry_run"] = bool(data["dry_run"])
    return RunRecord(**data)
