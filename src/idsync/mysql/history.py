"""The runs history table (`idsync_runs`) in MySQL: create it, append a row, read it back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from idsync.mysql import dialect
from idsync.mysql.connection import Connection
from idsync.runs import ADDED, SUCCESS, RunRecord, fields_of
from idsync.target import RUNS_TABLE as RUNS_TABLE_NAME

TABLE = RUNS_TABLE_NAME
DDL = dialect.RUNS_DDL


def create_table(conn: Connection) -> bool:
    """Create `idsync_runs` if missing; True if it was created. An older one gains the columns
    added since."""
    if conn.fetch(dialect.TABLE_EXISTS, (conn.database, TABLE)):
        if len(_fields(conn)) < len(fields_of(set(ADDED))):
            conn.execute(dialect.RUNS_ADD, (), f"adding columns to {TABLE}")
        return False
    conn.execute(DDL, (), f"creating {TABLE}")
    return True


def _fields(conn: Connection) -> tuple[str, ...]:
    """The fields the table holds (one made by an older version lacks the newer ones)."""
    rows = conn.fetch(dialect.RUNS_ADDED, (conn.database,), "reading run history")
    return fields_of({str(name) for (name,) in rows})


def append(conn: Connection, row: RunRecord) -> None:
    """Append ``row`` and commit."""
    fields = _fields(conn)
    values = [getattr(row, name) for name in fields]
    values[3], values[4] = _naive(row.started_at), _naive(row.finished_at)
    conn.execute(dialect.insert_run(fields), values, "history")
    conn.commit()


def _naive(moment: datetime) -> datetime:
    """UTC without tzinfo: DATETIME columns hold no zone, and idsync writes UTC only."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def recent(conn: Connection, job: str | None, limit: int) -> list[RunRecord]:
    """The newest runs first, of one job or all."""
    args: list[object] = [job, limit] if job else [limit]
    fields = _fields(conn)
    rows = conn.fetch(dialect.recent_runs(fields, job is not None), args, "reading run history")
    return [_from_row(fields, row) for row in rows]


def last_success(conn: Connection, job: str, commands: tuple[str, ...]) -> RunRecord | None:
    """The newest finished, real (not dry) pass of ``job`` by one of ``commands``."""
    statuses = sorted(str(status) for status in SUCCESS)
    fields = _fields(conn)
    sql = dialect.last_success(fields, len(commands), len(statuses))
    rows = conn.fetch(sql, [job, *commands, *statuses], "reading run history")
    return _from_row(fields, rows[0]) if rows else None


def _from_row(fields: tuple[str, ...], row: tuple[Any, ...]) -> RunRecord:
    data = dict(zip(fields, row, strict=True))
    data["started_at"] = data["started_at"].replace(tzinfo=UTC)
    data["finished_at"] = data["finished_at"].replace(tzinfo=UTC)
    data["dry_run"] = bool(data["dry_run"])
    return RunRecord(**data)
