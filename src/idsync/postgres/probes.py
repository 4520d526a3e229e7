"""What doctor asks the PostgreSQL server, answered as plain data.

The server checks privileges before it looks at rows, so a statement that touches none asks it
exactly what the real one would, roles included, and nothing is written (it is rolled back).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from idsync.postgres import dialect, mirror
from idsync.postgres.connection import Connection
from idsync.target import RUNS_TABLE, STATE_TABLE

# Errors raised after the privilege check: the statement was allowed.
_PASSED = frozenset({"42P07", "42701", "42P01"})  # table exists, duplicate column, no table


class PostgresProbes:
    """Doctor's questions about one target table, on an open connection."""

    def __init__(self, conn: Connection, names: tuple[str, str, str | None], relation: str) -> None:
        self.conn, self.relation = conn, relation
        self.table, self.column, self.mark = names
        # ON CONFLICT DO NOTHING needs no UPDATE; a soft delete's marks do.
        self.write_privileges = ("SELECT", "INSERT") + (("UPDATE",) if self.mark else ())

    def server_version(self) -> str:
        return f"PostgreSQL {self.conn.fetch(dialect.VERSION)[0][0]}"

    def pads(self, collation: str) -> bool:
        return False  # no PostgreSQL collation pads; char(n) does, and the catalog says so

    def _columns(self, table: str) -> tuple[str, ...]:
        return tuple(str(n) for (n,) in self.conn.fetch(dialect.VISIBLE_COLUMNS, (table,)))

    def _denials(self, probes: list[str]) -> list[str]:
        return [d for sql in probes if (d := self.conn.denied(sql, _PASSED)) is not None]

    def write_denials(self) -> list[str]:
        """Privileges refused; then what the insert of no row does not try on PostgreSQL (as
        MySQL's strict mode does): another column that needs a value."""
        probes = dialect.write_probes(self.relation, self.column)
        if self.mark is not None:
            probes.append(mirror.mark_nothing(self.relation, self.mark))
        denials = self._denials(probes)
        if not denials and self.conn.fetch(dialect.TABLE_EXISTS, (self.table,)):
            unfilled = self.conn.fetch(dialect.UNFILLED_COLUMNS, (self.table, self.column))
            denials += [f"column {name} is NOT NULL without a default: an insert of the id"
                        " alone fails" for (name,) in unfilled]  # fmt: skip
        return denials

    def mirror_denials(self, deletes: bool) -> list[str]:
        """What the server refuses of mirror mode: its lock of no row (SELECT … FOR UPDATE,
        which PostgreSQL allows with UPDATE alone), then, when it ``deletes`` (not marks), its
        delete of no row."""
        probes = [mirror.lock_nothing(self.relation, self.column)]
        probes += [mirror.delete_nothing(self.relation)] if deletes else []
        return self._denials(probes)

    def state_denials(self) -> list[str]:
        exists = bool(self.conn.fetch(dialect.TABLE_EXISTS, (STATE_TABLE,)))
        columns = self._columns(STATE_TABLE) or ("job", "target")
        return self._denials(dialect.state_probes(columns, exists))

    def history_present(self) -> bool:
        return bool(self.conn.fetch(dialect.TABLE_EXISTS, (RUNS_TABLE,)))

    def history_denials(self) -> list[str]:
        return self._denials(dialect.history_probes(self._columns(RUNS_TABLE) or ("run_id",)))

    def local_infile(self) -> bool | None:
        return None  # a MySQL setting

    def grant(self, privileges: Sequence[str], table: str) -> str:
        """GRANT statements: a table's privileges, and CREATE where PostgreSQL has it (the
        schema)."""
        schema, on_table = self.conn.schema, [p for p in privileges if p != "CREATE"]
        grants = [f"GRANT {', '.join(on_table)} ON {schema}.{table}"] if on_table else []
        grants += [f"GRANT CREATE ON SCHEMA {schema}"] if "CREATE" in privileges else []
        return "; ".join(f"{grant} TO the user in the URL" for grant in grants)

    def exact_column(self) -> str:
        return 'text COLLATE "C"'  # what `idsync init` makes: every character, byte order

    def utc_now(self) -> datetime:
        moment: datetime = self.conn.fetch(dialect.UTC_NOW)[0][0]
        return moment.replace(tzinfo=UTC)
