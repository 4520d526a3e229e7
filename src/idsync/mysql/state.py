"""Where a watcher is: one row per job and target in `idsync_state`, in the target's database.

The row is written in the same transaction as the batch it covers (see
:meth:`~idsync.mysql.target.MySQLTarget.insert_batch`), so the stored position and the stored ids
always agree: after a crash the next start replays exactly what had not been committed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STATE_TABLE = "idsync_state"

_DDL = f"""CREATE TABLE IF NOT EXISTS `{STATE_TABLE}` (
  `job` VARCHAR(64) NOT NULL,
  `target` VARCHAR(191) NOT NULL,
  `mode` VARCHAR(16) NOT NULL,
  `resume_token` TEXT NULL,
  `last_seen_id` VARCHAR(255) NULL,
  `last_seen_time` DATETIME(3) NULL,
  `updated_at` DATETIME(3) NOT NULL,
  PRIMARY KEY (`job`, `target`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""

_COLUMNS = "`mode`, `resume_token`, `last_seen_id`, `last_seen_time`, `updated_at`"


@dataclass(frozen=True)
class Checkpoint:
    """How far a watcher has come. Times are UTC."""

    mode: str
    """How it was following: ``change-stream`` or ``polling``."""
    resume_token: str | None = None
    """The change stream's resume token as canonical extended JSON (:func:`~idsync.mongo.feeds.
    encode_token`): where to resume."""
    last_seen_id: str | None = None
    """The newest id committed with this checkpoint: for people, not for resuming."""
    last_seen_time: datetime | None = None
    """Every document created before this (less the poll window) is in the target: the time of
    the last committed change, or of the start of the last poll."""
    updated_at: datetime | None = None
    """When the row was written (read back only)."""


def target_key(table: str, column: str) -> str:
    return f"{table}.{column}"


def watch_lock_name(database: str, target: str, job: str) -> str:
    """One watcher per job and target: the name of the MySQL lock that says so."""
    name = f"idsync-watch:{database}.{target}:{job}"
    if len(name) > 64:  # the server's limit for lock names
        name = "idsync-watch:" + hashlib.sha256(name.encode()).hexdigest()[:48]
    return name


def create_table(cursor: Any) -> None:
    """Create `idsync_state` if it is missing."""
    cursor.execute(_DDL)


def load(cursor: Any, job: str, target: str) -> Checkpoint | None:
    cursor.execute(
        f"SELECT {_COLUMNS} FROM `{STATE_TABLE}` WHERE `job` = %s AND `target` = %s",
        (job, target),
    )
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
        f"INSERT INTO `{STATE_TABLE}` (`job`, `target`, {_COLUMNS})"
        " VALUES (%s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(3))"
        " ON DUPLICATE KEY UPDATE `mode` = VALUES(`mode`),"
        " `resume_token` = VALUES(`resume_token`), `last_seen_id` = VALUES(`last_seen_id`),"
        " `last_seen_time` = VALUES(`last_seen_time`), `updated_at` = VALUES(`updated_at`)",
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
    cursor.execute("SELECT GET_LOCK(%s, %s)", (name, timeout_s))
    row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return bool(row[0] == 1)


def _aware(value: object) -> datetime | None:
    """DATETIME columns come back naive; they hold UTC."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None
