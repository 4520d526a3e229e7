"""PostgreSQL's SQL text, built and nothing else: no connection, no driver, no server needed.

Names reaching here were validated as plain identifiers (config.py) and are quoted, so that the
name is the one written (PostgreSQL folds unquoted names to lower case). Values always travel as
parameters, ids as one ``text[]`` per statement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from idsync import sqltext
from idsync.ledger import RANGES_TABLE, ledger_sql
from idsync.target import RUNS_TABLE, STATE_TABLE


def quote(name: str) -> str:
    """One identifier, as written."""
    return '"' + name.replace('"', '""') + '"'


def relation(name: str) -> str:
    """A table's name, ``schema.table`` or ``table``: each part quoted (no part holds a dot)."""
    return ".".join(quote(part) for part in name.split("."))


def value(column: str) -> str:
    """A column's value as text: a char(n) column's padding dropped, any other unchanged."""
    return f"{quote(column)}::text"


def lock_key(name: str) -> int:
    """A signed 64-bit key for ``pg_try_advisory_lock``, from the lock's name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"
# A bigint advisory key is in pg_locks as classid (its high half) and objid (its low half).
LOCK_HOLDER = (
    "SELECT a.pid, a.application_name, host(a.client_addr), a.client_port"
    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid::bigint = %s AND l.objid::bigint = %s"
)


def lock_holder_args(key: int) -> tuple[int, int]:
    """:data:`LOCK_HOLDER`'s arguments for the advisory lock ``key``."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def lock_holder(rows: list[tuple[object, ...]]) -> str | None:
    """``backend 4242 (idsync host=web-1 pid=77) from 10.0.0.5:40312``, or None."""
    if not rows:
        return None
    pid, application, address, port = rows[0]
    named = f" ({application})" if application else ""
    # No address: a Unix socket (port -1), or a session the user may not see the details of.
    where = f" from {address}:{port}" if address else " over a local socket" if port == -1 else ""
    return f"backend {pid}{named}{where}"


SCHEMA_EXISTS = "SELECT 1 FROM pg_namespace WHERE nspname = %s AND nspname = current_schema()"
TABLE_EXISTS = "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s"
VERSION = "SHOW server_version"


def nothing_from(table: str) -> str:
    return f"SELECT 1 FROM {relation(table)} LIMIT 0"


def unmarked(mark: str | None) -> str:
    """The condition that keeps a soft-deleting job's marked rows out of what is read: they are
    not the target's."""
    return "" if mark is None else f" AND {quote(mark)} IS NULL"


def select_column(table: str, column: str, mark: str | None = None) -> str:
    where = f"{quote(column)} IS NOT NULL{unmarked(mark)}"
    return f"SELECT {value(column)} FROM {relation(table)} WHERE {where}"


# -1 (or 0) until the table was first vacuumed or analysed: then there is no estimate.
ESTIMATED_ROWS = "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)"


def count_values(table: str, column: str, mark: str | None = None) -> str:
    """The column's non-null values, counted (a full scan of its index)."""
    col = quote(column)
    return f"SELECT COUNT({col}) FROM {relation(table)} WHERE {col} IS NOT NULL{unmarked(mark)}"


def select_page(table: str, column: str, after: bool, mark: str | None = None) -> str:
    """A page of the column's values in its order, after the last one of the previous page."""
    col = quote(column)
    where = (f"{col} > %s" if after else f"{col} IS NOT NULL") + unmarked(mark)
    return f"SELECT {col} FROM {relation(table)} WHERE {where} ORDER BY {col} LIMIT %s"


INCOMING = "pg_temp.idsync_incoming"
"""The session's temporary table a batch is copied into (emptied at each commit); named with
its schema, so that no table of the user's, whatever its name or the search_path, is taken
for it."""
MAKE_INCOMING = f"CREATE TEMPORARY TABLE IF NOT EXISTS {INCOMING} (x text) ON COMMIT DELETE ROWS"
EMPTY_INCOMING = f"TRUNCATE {INCOMING}"
COPY_INCOMING = f"COPY {INCOMING} (x) FROM STDIN"


def copy_into(table: str, column: str) -> str:
    """A batch straight into the table: the fast path, when no id of it is there already."""
    return f"COPY {relation(table)} ({quote(column)}) FROM STDIN"


def insert_incoming(table: str, column: str) -> str:
    """Insert the copied batch; an id already there under a unique index is skipped, never an
    error (the counterpart of MySQL's no-op update)."""
    return (
        f"INSERT INTO {relation(table)} ({quote(column)})"
        f" SELECT x FROM {INCOMING} ON CONFLICT DO NOTHING"
    )


def values_of(table: str, column: str, mark: str | None = None) -> str:
    """The stored values equal to any of a text[] under the column's collation."""
    where = f"{quote(column)} = ANY(%s::text[]){unmarked(mark)}"
    return f"SELECT {value(column)} FROM {relation(table)} WHERE {where}"


def equal_to(table: str, column: str, mark: str | None = None) -> str:
    where = f"{quote(column)} = %s{unmarked(mark)}"
    return f"SELECT {value(column)} FROM {relation(table)} WHERE {where} LIMIT 1"


def representatives(collation: str) -> str:
    """For a text[]: each text's first equal under ``collation`` (quoted, with its schema), in
    order (equal keys, equal texts there: what a nondeterministic collation takes for one)."""
    return (
        f"SELECT first_value(x) OVER (PARTITION BY x COLLATE {collation} ORDER BY n)"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n"
    )


def ordered_texts(collation: str) -> str:
    return f"SELECT x FROM unnest(%s::text[]) AS u(x) ORDER BY x COLLATE {collation}"


# --- the column, as the catalog describes it ---------------------------------------------------

_RELATION = "(quote_ident(current_schema()) || '.' || quote_ident(%s))::regclass"
"""The table named by a parameter, in the session's one schema (the job's)."""

COLUMN_FACTS = (
    # The collation from pg_attribute: its schema is part of its name ("default", the
    # database's, lives in pg_catalog; datcollate, "C.UTF-8", is a locale, not a collation).
    "SELECT c.data_type, c.character_maximum_length, COALESCE(k.collname, 'default'),"
    " quote_ident(n.nspname) || '.' || quote_ident(k.collname), k.collisdeterministic,"
    " c.table_schema, c.table_name, c.column_name"
    " FROM information_schema.columns c"
    f" JOIN pg_attribute a ON a.attrelid = {_RELATION.replace('%s', 'c.table_name')}"
    " AND a.attname = c.column_name"
    " LEFT JOIN pg_collation k ON k.oid = a.attcollation"
    " LEFT JOIN pg_namespace n ON n.oid = k.collnamespace"
    " WHERE c.table_schema = current_schema() AND c.table_name = %s AND c.column_name = %s"
)
UNIQUE_ON = (
    "SELECT am.amname = 'btree' AND opc.opcdefault AND i.indcollation[0] = a.attcollation"
    " FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
    " JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam"
    " JOIN pg_opclass opc ON opc.oid = i.indclass[0]"
    f" WHERE i.indrelid = {_RELATION} AND i.indisunique AND i.indisvalid AND i.indimmediate"
    " AND i.indnatts = 1 AND i.indexprs IS NULL AND i.indpred IS NULL AND a.attname = %s"
)
"""Each valid unique index on exactly the column (no expression, no predicate, no other
column; one a failed CREATE INDEX CONCURRENTLY left invalid enforces nothing; a DEFERRABLE
constraint's checks each row only at the commit, so a concurrent writer's duplicate is not
refused where idsync relies on it), and whether it is
a B-tree in the column's own collation and operator class: one that reads it in order."""
REWRITERS = (
    # Whatever may store other than what was sent, or hide what was stored, on the table or
    # any of its partitions: a trigger of any timing on insert or update (an AFTER trigger can
    # UPDATE the row it follows; a partition's own trigger fires for rows routed to it), and
    # row-level security (an insert its read policy then hides), rules (which COPY ignores).
    # pg_partition_tree() gives nothing for a table that is not partitioned: the table too.
    f"WITH rel AS (SELECT {_RELATION} AS oid), parts AS (SELECT oid AS relid FROM rel"
    " UNION SELECT t.relid FROM rel, pg_partition_tree(rel.oid) t)"
    " SELECT 'trigger ' || t.tgname FROM pg_trigger t JOIN parts p ON t.tgrelid = p.relid"
    " WHERE NOT t.tgisinternal AND t.tgtype & 20 <> 0"  # 4 INSERT, 16 UPDATE
    " UNION SELECT 'row-level security on ' || c.relname FROM pg_class c"
    " JOIN parts p ON c.oid = p.relid WHERE c.relrowsecurity"
    " UNION SELECT 'rule ' || r.rulename FROM pg_rewrite r JOIN parts p ON r.ev_class = p.relid"
    " WHERE r.rulename <> '_RETURN' ORDER BY 1"
)


# --- the tables idsync creates ------------------------------------------------------------------


def target_table(table: str, column: str, mark: str | None = None) -> str:
    """The table `idsync init` creates: exact ids (the C collation compares bytes), unique (and
    a soft-deleting job's mark)."""
    marked = f", {quote(mark)} timestamptz NULL" if mark else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {relation(table)} ("
        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        f' {quote(column)} text COLLATE "C" NOT NULL UNIQUE,'
        f" created_at timestamptz NOT NULL DEFAULT now(){marked})"
    )


RUNS_DDL = f"""CREATE TABLE IF NOT EXISTS {quote(RUNS_TABLE)} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id varchar(32) NOT NULL,
  job varchar(64) NOT NULL,
  command varchar(16) NOT NULL,
  started_at timestamp(3) NOT NULL,
  finished_at timestamp(3) NOT NULL,
  status varchar(16) NOT NULL,
  exit_code smallint NOT NULL,
  dry_run boolean NOT NULL,
  source_ids bigint NULL,
  missing bigint NULL,
  inserted bigint NULL,
  rejected bigint NULL,
  orphans bigint NULL,
  duration_s double precision NOT NULL,
  error text NULL,
  host varchar(255) NOT NULL,
  version varchar(32) NOT NULL,
  deleted bigint NULL
)"""
# Which of the columns added since (runs.ADDED) the schema's table has.
RUNS_ADDED = (
    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
    f" AND table_name = '{RUNS_TABLE}' AND column_name IN ('deleted')"
)
RUNS_ADD = f"ALTER TABLE {quote(RUNS_TABLE)} ADD COLUMN IF NOT EXISTS deleted bigint NULL"

STATE_DDL = f"""CREATE TABLE IF NOT EXISTS {quote(STATE_TABLE)} (
  job varchar(64) COLLATE "C" NOT NULL,
  target varchar(191) COLLATE "C" NOT NULL,
  mode varchar(16) NOT NULL,
  resume_token text NULL,
  last_seen_id varchar(255) NULL,
  last_seen_time timestamp(3) NULL,
  updated_at timestamp(3) NOT NULL,
  PRIMARY KEY (job, target)
)"""


def insert_run(fields: Sequence[str]) -> str:
    names = ", ".join(quote(name) for name in fields)
    return f"INSERT INTO {quote(RUNS_TABLE)} ({names}) VALUES ({', '.join(['%s'] * len(fields))})"


def recent_runs(fields: Sequence[str], one_job: bool) -> str:
    """The newest runs first, of one job (a parameter) or all; a LIMIT parameter last."""
    where = "WHERE job = %s " if one_job else ""
    return (
        f"SELECT {', '.join(fields)} FROM {quote(RUNS_TABLE)} {where}"
        "ORDER BY started_at DESC, id DESC LIMIT %s"
    )


def last_success(fields: Sequence[str]) -> str:
    """The newest finished, real run of a job (a parameter) by a command and status in two
    text[] parameters."""
    return (
        f"SELECT {', '.join(fields)} FROM {quote(RUNS_TABLE)} WHERE job = %s"
        " AND command = ANY(%s) AND status = ANY(%s) AND NOT dry_run"
        " ORDER BY finished_at DESC LIMIT 1"
    )


_STATE_COLUMNS = "mode, resume_token, last_seen_id, last_seen_time, updated_at"
LOAD_STATE = f"SELECT {_STATE_COLUMNS} FROM {quote(STATE_TABLE)} WHERE job = %s AND target = %s"
SAVE_STATE = (
    f"INSERT INTO {quote(STATE_TABLE)} (job, target, {_STATE_COLUMNS})"
    " VALUES (%s, %s, %s, %s, %s, %s, now() AT TIME ZONE 'UTC')"
    " ON CONFLICT (job, target) DO UPDATE SET mode = EXCLUDED.mode,"
    " resume_token = EXCLUDED.resume_token, last_seen_id = EXCLUDED.last_seen_id,"
    " last_seen_time = EXCLUDED.last_seen_time, updated_at = EXCLUDED.updated_at"
)


# --- what doctor asks -----------------------------------------------------------------------

UTC_NOW = "SELECT now() AT TIME ZONE 'UTC'"
VISIBLE_COLUMNS = (
    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
    " AND table_name = %s AND is_identity = 'NO' AND column_default IS NULL"
    " ORDER BY ordinal_position"
)

UNFILLED_COLUMNS = (
    # NOT NULL, no default, not generated: an insert of the id alone fails on every row.
    "SELECT a.attname FROM pg_attribute a"
    f" WHERE a.attrelid = {_RELATION}"
    " AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef"
    " AND a.attidentity = '' AND a.attgenerated = '' AND a.attname <> %s ORDER BY a.attnum"
)


def insert_nothing(table: str, columns: Sequence[str]) -> str:
    """An insert of no row: the server checks its privileges exactly as for a real one."""
    names, nulls = ", ".join(quote(c) for c in columns), ", ".join(["NULL"] * len(columns))
    return f"INSERT INTO {relation(table)} ({names}) SELECT {nulls} WHERE FALSE"


def write_probes(table: str, column: str) -> list[str]:
    return [
        MAKE_INCOMING,
        f"SELECT {quote(column)} FROM {relation(table)} LIMIT 0",
        f"{insert_nothing(table, (column,))} ON CONFLICT DO NOTHING",
    ]


def state_probes(columns: Sequence[str], exists: bool) -> list[str]:
    """What `watch` does to its checkpoint row, on no row: create the table when it is missing
    (bound to fail after the privilege check: the same column twice), read it, upsert it."""
    create = [] if exists else [f"CREATE TABLE {quote(STATE_TABLE)} (probe int, probe int)"]
    return [
        *create,
        f"SELECT job FROM {quote(STATE_TABLE)} LIMIT 0",
        f"{insert_nothing(STATE_TABLE, columns)}"
        " ON CONFLICT (job, target) DO UPDATE SET mode = EXCLUDED.mode",
    ]


def history_probes(columns: Sequence[str]) -> list[str]:
    return [insert_nothing(RUNS_TABLE, columns), f"SELECT run_id FROM {quote(RUNS_TABLE)} LIMIT 0"]


# --- per-bucket summaries of ObjectId texts (check) ------------------------------------------


def oid_shaped(column: str, binary: bool) -> str:
    """The condition that a value is an ObjectId's text (``~`` is case-sensitive, and its
    ``$`` matches at the very end only)."""
    col = value(column)
    return f"char_length({col}) = 24 AND {col} ~ '^[0-9a-f]{{24}}$'"


def checksum(column: str, prime: int) -> str:
    """:func:`idsync.ids.checksums` of the hex text in ``column``, for one prime: the 96-bit
    number from its two 48-bit halves, mod ``prime``, squared mod ``prime`` (in bigint: every
    step stays below 2**53)."""
    col = value(column)
    high = f"('x' || substr({col}, 1, 12))::bit(48)::bigint"
    low = f"('x' || substr({col}, 13, 12))::bit(48)::bigint"
    # mod(), not %: a % in the text would be read as a parameter mark.
    number = f"mod(mod({high}, {prime}) * {pow(2, 48, prime)} + mod({low}, {prime}), {prime})"
    return f"mod({number} * {number}, {prime})"


# --- the ledger of `idsync work` (see idsync.work.ledger) ------------------------------------

LEDGER = ledger_sql(
    f"""CREATE TABLE IF NOT EXISTS {quote(RANGES_TABLE)} (
  job varchar(191) COLLATE "C" NOT NULL,
  round_id bigint NOT NULL,
  idx integer NOT NULL,
  kind varchar(8) NOT NULL,
  lo char(24) COLLATE "C" NULL,
  hi char(24) COLLATE "C" NULL,
  state varchar(8) NOT NULL,
  owner varchar(200) NULL,
  lease_until timestamptz NULL,
  attempts integer NOT NULL,
  beats bigint NOT NULL DEFAULT 0,
  source_ids bigint NULL,
  inserted bigint NULL,
  rejected bigint NULL,
  finished_at timestamptz NULL,
  PRIMARY KEY (job, round_id, idx)
)""",
    now="clock_timestamp()",
    later="clock_timestamp() + %s * interval '1 second'",
)


def select_between(table: str, column: str, mark: str | None = None) -> str:
    """The column's values from one text to another, both included."""
    col = quote(column)
    where = f"{col} >= %s AND {col} <= %s{unmarked(mark)}"
    return sqltext.select_where(relation(table), col, where)
