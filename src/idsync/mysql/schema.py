"""The target table that `idsync init` creates: exact ids, unique, never altered once there."""

from __future__ import annotations

import logging

from idsync.errors import ConfigError
from idsync.mysql import dialect
from idsync.mysql.connection import Connection

log = logging.getLogger(__name__)


def create_target_table(conn: Connection, table: str, column: str, mark: str | None) -> bool:
    """Create the job's table if it is missing; True if created. An existing one is left as is."""
    if conn.fetch(dialect.TABLE_EXISTS, (conn.database, table)):
        return False
    clash = {column, mark} & {"id", "created_at"}
    if clash:
        raise ConfigError(f"column name {clash.pop()!r} clashes with idsync's own columns")
    ddl = dialect.target_table(table, column, exact_collation(conn), mark)
    conn.execute(ddl, (), f"creating {table}")
    return True


def exact_collation(conn: Connection) -> str:
    """A binary NO PAD collation: two ids are equal only when every byte is."""
    names = {str(name) for (name,) in conn.fetch(dialect.COLLATIONS_AMONG, dialect.NO_PAD_BINARY)}
    for preferred in dialect.NO_PAD_BINARY:
        if preferred in names:
            return preferred
    log.warning("server has no NO PAD binary collation; ids differing by trailing spaces collide")
    return "utf8mb4_bin"
