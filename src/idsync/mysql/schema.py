"""The target table that `idsync init` creates: exact ids, unique, never altered once there."""

from __future__ import annotations

import logging

from idsync.errors import ConfigError
from idsync.mysql.target import MySQLTarget

log = logging.getLogger(__name__)

_NO_PAD_BINARY = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")  # MariaDB's, then MySQL 8's


def create_target_table(target: MySQLTarget) -> bool:
    """Create the job's table if it is missing; True if created. An existing one is left as is."""
    if target.table_exists():
        return False
    if target.column in ("id", "created_at"):
        raise ConfigError(f"column name {target.column!r} clashes with idsync's own columns")
    col = f"`{target.column}`"
    ddl = (
        f"CREATE TABLE IF NOT EXISTS `{target.table}` ("
        " `id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        f" {col} VARCHAR(64) CHARACTER SET utf8mb4 COLLATE {exact_collation(target)} NOT NULL,"
        " `created_at` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
        f" UNIQUE KEY `uq_{target.column}` ({col})"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
    target.query(ddl, (), f"creating {target.table}")
    return True


def exact_collation(target: MySQLTarget) -> str:
    """A binary NO PAD collation: two ids are equal only when every byte is."""
    marks = ", ".join(["%s"] * len(_NO_PAD_BINARY))
    rows = target.query(
        "SELECT COLLATION_NAME FROM information_schema.COLLATIONS"
        f" WHERE COLLATION_NAME IN ({marks})",
        _NO_PAD_BINARY,
    )
    names = {str(name) for (name,) in rows}
    for preferred in _NO_PAD_BINARY:
        if preferred in names:
            return preferred
    log.warning("server has no NO PAD binary collation; ids differing by trailing spaces collide")
    return "utf8mb4_bin"
