"""Where a watcher is: one row per job and target in `idsync_state`, in the target's database.

The row is written in the same transaction as the batch it covers (see
:meth:`~idsync.mysql.target.MySQLTarget.insert_batch`), so the stored position and the stored ids
always agree: after a crash the next start replays exactly what had not been committed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from idsync.mysql import dialect
from idsync.target import STATE_TABLE as STATE_TABLE_NAME
from idsync.target import Checkpoint

STATE_TABLE = STATE_TABLE_NAME


def target_key(table: str, column: str) -> str:
    return f"{table}.{column}"


def create_table(cursor: Any) -> None:
    """Create `idsync_state` if it is missing."""
    cursor.execute(dialect.STATE_DDL)


def load(cursor: Any, job: str, target: str) -> Checkpoint | None:
    cursor.execute(dialect.LOAD_STATE, (job, target))
    row = cursor.fetchone()
    if row is None:
        return None
    mode, token, last_id, last_time, updated = row
    return Checkpoint(
        mode=str(mode),
        resume_token=None if token is None else str(token),
        last_seen_id=None if last_id is None else str(last_id),
        last_seen_time=_aware(last_time),
        updated_at=_aware(updated),
    )


def save(cursor: Any, job: str, target: str, checkpoint: Checkpoint) -> None:
    cursor.execute(
        dialect.SAVE_STATE,
        (
            job,
            target,
            checkpoint.mode,
            checkpoint.resume_token,
            checkpoint.last_seen_id[:255] if checkpoint.last_seen_id else None,
            _naive(checkpoint.last_seen_time),
        ),
    )


def take_lock(cursor: Any, name: str, timeout_s: float) -> bool | None:
    """True when taken, False when another session held it all along, None when the server
    answered NULL: the wait itself failed (killed, out of memory), which is not a held lock."""
    cursor.execute(dialect.GET_LOCK, (name, timeout_s))
    row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return bool(row[0] == 1)


def _aware(value: object) -> datetime | None:
    """DATETIME columns come back naive; they hold UTC."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None
