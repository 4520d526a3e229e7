"""What doctor asks the MySQL server, answered as plain data.

The server checks privileges before it looks at rows, so a statement that touches none asks it
exactly what the real one would: the same grants, roles included, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from idsync.errors import IdsyncError
from idsync.mysql import dialect, mirror
from idsync.mysql.connection import Connection
from idsync.mysql.errors import ABSENT_PASSED, CREATE_PASSED
from idsync.target import RUNS_TABLE as RUNS_TABLE_NAME
from idsync.target import STATE_TABLE as STATE_TABLE_NAME


class MySQLProbes:
    """Doctor's questions about one target table, on an open connection."""

    # INSERT … ON DUPLICATE KEY UPDATE needs UPDATE as well as INSERT.
    write_privileges: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE")

    def __init__(self, conn: Connection, table: str, column: str, mark: str | None) -> None:
        self.conn, self.table, self.column, self.mark = conn, table, column, mark

    def server_version(self) -> str:
        return str(self.conn.fetch(dialect.VERSION)[0][0])

    def pads(self, collation: str) -> bool:
        """Whether trailing spaces are ignored in comparisons (PAD SPACE)."""
        if collation == "binary":
            return False
        try:  # MySQL 8 says so in its catalog; MariaDB says so in the name ("nopad")
            rows = self.conn.fetch(dialect.PAD_ATTRIBUTE, (collation,))
            return bool(rows) and str(rows[0][0]).upper() == "PAD SPACE"
        except IdsyncError:
            return "nopad" not in collation

    def _columns(self, table: str) -> tuple[str, ...]:
        """The table's columns (those the user may see): a probe names them all, or strict mode
        refuses it for a NOT NULL column without a default, even with no row to insert."""
        args = (self.conn.database, table, "%auto_increment%")
        return tuple(str(name) for (name,) in self.conn.fetch(dialect.VISIBLE_COLUMNS, args))

    def _denials(self, probes: list[str], passed: frozenset[int]) -> list[str]:
        return [d for sql in probes if (d := self.conn.denied(sql, passed)) is not None]

    def write_denials(self) -> list[str]:
        """What the server refuses of what `run` does to the table."""
        probes = dialect.write_probes(self.table, self.column)
        if self.mark is not None:  # a soft delete's marks are set and cleared
            probes.append(mirror.mark_nothing(self.table, self.mark))
        return self._denials(probes, frozenset())

    def mirror_denials(self, deletes: bool) -> list[str]:
        """What the server refuses of mirror mode: its lock of no row (SELECT … FOR UPDATE),
        then, when it ``deletes`` (not marks), its delete of no row."""
        probes = [mirror.lock_nothing(self.table, self.column)]
        probes += [mirror.delete_nothing(self.table)] if deletes else []
        return self._denials(probes, frozenset())

    def state_denials(self) -> list[str]:
        """What it refuses of what `watch` does to its state table: CREATE TABLE IF NOT EXISTS
        at every start (CREATE even when the table is there), then a read and an upsert."""
        denied = self._denials([dialect.state_create_probe()], CREATE_PASSED)
        columns = self._columns(STATE_TABLE_NAME) or ("job", "target")
        return denied + self._denials(dialect.state_probes(columns), ABSENT_PASSED)

    def history_present(self) -> bool:
        return bool(self.conn.fetch(dialect.TABLE_EXISTS, (self.conn.database, RUNS_TABLE_NAME)))

    def history_denials(self) -> list[str]:
        columns = self._columns(RUNS_TABLE_NAME) or ("run_id",)
        return self._denials(dialect.history_probes(columns), frozenset())

    def local_infile(self) -> bool | None:
        return bool(int(self.conn.fetch(dialect.LOCAL_INFILE)[0][0]))

    def grant(self, privileges: Sequence[str], table: str) -> str:
        where = f"{self.conn.database}.{table}"
        return f"GRANT {', '.join(privileges)} ON {where} TO the user in the URL"

    def exact_column(self) -> str:
        return "VARCHAR(64) CHARACTER SET utf8mb4 with a binary NO PAD collation"

    def utc_now(self) -> datetime:
        moment: datetime = self.conn.fetch(dialect.UTC_NOW)[0][0]
        return moment.replace(tzinfo=UTC)
