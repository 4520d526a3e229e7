"""Mirror mode's SQL text on PostgreSQL: rows locked and deleted (or marked, and their marks
cleared) by value, what references the table (foreign keys, triggers on deletes or updates, its
partitions' and inheriting tables' too), the mark column's facts, the privileges' probes. No
connection."""

from __future__ import annotations

from idsync import sqltext
from idsync.postgres.dialect import quote, relation, values_of


def lock_values(table: str, column: str, mark: str | None = None) -> str:
    """:func:`values_of` (unmarked), their rows locked until the transaction ends."""
    return values_of(table, column, mark) + " FOR UPDATE"


def lock_nothing(table: str, column: str) -> str:
    """A lock of no row: the server checks what SELECT … FOR UPDATE needs all the same."""
    return f"SELECT {quote(column)} FROM {relation(table)} WHERE false FOR UPDATE"


def delete_nothing(table: str) -> str:
    """A delete of no row: the server checks the DELETE privilege all the same."""
    return f"DELETE FROM {relation(table)} WHERE false"


def mark_values(table: str, column: str, marking: tuple[str, str]) -> str:
    """Mark the unmarked rows of a text[] (soft delete): ``marking`` is the mark column and
    what sets it to now."""
    flag, now = quote(marking[0]), marking[1]
    where = f"{quote(column)} = ANY(%s::text[]) AND {flag} IS NULL"
    return sqltext.set_mark(relation(table), flag, now, where)


def mark_nothing(table: str, mark: str) -> str:
    """An update of no row's mark: the server checks the UPDATE privilege all the same."""
    return sqltext.set_mark(relation(table), quote(mark), "NULL", "false")


def delete_values(table: str, column: str) -> str:
    """Delete the rows equal to any of a text[] under the column's collation."""
    return f"DELETE FROM {relation(table)} WHERE {quote(column)} = ANY(%s::text[])"


# The foreign keys that reference a table (its name as to_regclass takes it): name,
# referencing table, its columns, the delete action's letter (pg_constraint.confdeltype).
# A delete reaches the table's partitions (at every level) and the tables that inherit from it:
# their foreign keys and triggers are the table's too.
# (pg_inherits holds both: a partition is an inheriting table.)
_FAMILY = (
    "WITH RECURSIVE fam(relid) AS (SELECT to_regclass(%s)::oid"
    " UNION SELECT i.inhrelid FROM fam JOIN pg_inherits i ON i.inhparent = fam.relid)"
)
REFERENCES = (
    f"{_FAMILY} SELECT c.conname, c.conrelid::regclass::text,"
    " array_to_string(ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)"
    " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i), ','),"
    " c.confdeltype FROM pg_constraint c JOIN fam ON c.confrelid = fam.relid"
    " WHERE c.contype = 'f' AND c.conparentid = 0 ORDER BY 2, 1"  # not a partition's clone
)


# The table's triggers on DELETE (tgtype bit 3), and its rules on DELETE (ev_type '4').
def event_triggers(event: str) -> str:
    """The table's triggers and rules on ``event`` (DELETE, or UPDATE: what marks do)."""
    bit, rule = {"DELETE": (8, "4"), "UPDATE": (16, "2")}[event]
    return (
        f"{_FAMILY} SELECT 'trigger ' || t.tgname FROM pg_trigger t JOIN fam"
        f" ON t.tgrelid = fam.relid WHERE NOT t.tgisinternal AND (t.tgtype & {bit}) <> 0"
        " UNION SELECT 'rule ' || r.rulename FROM pg_rewrite r JOIN fam ON r.ev_class = fam.relid"
        f" WHERE r.ev_type = '{rule}' ORDER BY 1"
    )


DELETE_ACTIONS = {
    "a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT",
}  # fmt: skip


# A column of a domain type (of a domain, …) takes the base type, every domain's NOT NULL,
# and the nearest default where it has none itself.
MARK_FACTS = (
    "WITH RECURSIVE c AS (SELECT data_type, is_nullable, column_default, is_generated,"
    " to_regtype(quote_ident(domain_schema) || '.' || quote_ident(domain_name)) AS domain"
    " FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND table_name = %s AND column_name = %s),"
    " chain(oid, depth) AS (SELECT domain, 0 FROM c WHERE domain IS NOT NULL"
    " UNION ALL SELECT t.typbasetype, chain.depth + 1 FROM chain"
    " JOIN pg_type t ON t.oid = chain.oid WHERE t.typtype = 'd'),"
    " types AS (SELECT chain.depth, t.oid, t.typtype, t.typnotnull, t.typdefault FROM chain"
    " JOIN pg_type t ON t.oid = chain.oid)"
    " SELECT COALESCE((SELECT format_type(oid, NULL) FROM types WHERE typtype <> 'd'),"
    " c.data_type),"
    " CASE WHEN c.is_nullable = 'YES' AND NOT EXISTS (SELECT 1 FROM types WHERE typnotnull)"
    " THEN 'YES' END,"
    " COALESCE(c.column_default,"
    " (SELECT typdefault FROM types WHERE typdefault IS NOT NULL ORDER BY depth LIMIT 1)),"
    " CASE WHEN c.is_generated = 'ALWAYS' THEN 'generated' ELSE '' END FROM c"
)


def unmark(table: str, column: str, mark: str) -> str:
    """Clear the mark of the rows of a text[] that have one: those ids came back."""
    flag = quote(mark)
    where = f"{quote(column)} = ANY(%s::text[]) AND {flag} IS NOT NULL"
    return sqltext.set_mark(relation(table), flag, "NULL", where)
