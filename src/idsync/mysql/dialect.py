"""MySQL's SQL text, built and nothing else: no connection, no driver, testable without a server.

Names reaching here were validated as plain identifiers (config.py); quoting guards reserved
words. Values always travel as parameters (``%s``), never inside the text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from idsync import sqltext
from idsync.ids import OID_TEXT_SQL
from idsync.ledger import RANGES_TABLE, ledger_sql
from idsync.target import RUNS_TABLE, STATE_TABLE

LOCK_NAME_MAX = 64
"""The server's limit for a named lock."""

TABLE_EXISTS = "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"


def quote(name: str) -> str:
    return f"`{name}`"


relation = quote  # a table: the URL names its database
value = quote  # a column's value: read as stored


def marks(count: int) -> str:
    """``%s, %s, …``: one parameter mark per value."""
    return ", ".join(["%s"] * count)


def _bounded(prefix: str, name: str) -> str:
    if len(name) > LOCK_NAME_MAX:
        return prefix + hashlib.sha256(name.encode()).hexdigest()[:48]
    return name


def run_lock_name(database: str, table: str, column: str) -> str:
    """The lock a run holds on its target column (names as the catalog spells them)."""
    return _bounded("idsync:", f"idsync:{database}.{table}.{column}")


def watch_lock_name(database: str, target: str, job: str) -> str:
    """One watcher per job and target: the name of the lock that says so."""
    return _bounded("idsync-watch:", f"idsync-watch:{database}.{target}:{job}")


GET_LOCK = "SELECT GET_LOCK(%s, %s)"
# The holder's client address is visible to the same user or with PROCESS; its id always.
LOCK_HOLDER = (
    "SELECT IS_USED_LOCK(%s),"
    " (SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(%s))"
)


def lock_holder(rows: list[tuple[object, ...]]) -> str | None:
    """``connection 12 from 10.0.0.5:40312`` from :data:`LOCK_HOLDER`'s row, or None."""
    if not rows or rows[0][0] is None:
        return None
    thread, host = rows[0]
    return f"connection {thread}" + (f" from {host}" if host else "")


VERSION = "SELECT VERSION()"


def nothing_from(table: str) -> str:
    """A read of no row: the server still checks that the table is there and may be read."""
    return f"SELECT 1 FROM {quote(table)} LIMIT 0"


# --- the column, as the catalog describes it ---------------------------------------------------

COLUMN_FACTS = (
    "SELECT DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, CHARACTER_SET_NAME, COLLATION_NAME,"
    " TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND COLUMN_NAME = %s"
)
UNIQUE_INDEXES = (
    "SELECT INDEX_NAME, COUNT(*), MAX(COLUMN_NAME = %s AND SUB_PART IS NULL),"
    " MAX(INDEX_TYPE = 'BTREE') "
    "FROM information_schema.STATISTICS "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0 GROUP BY INDEX_NAME"
)
"""Per unique index of a table: its columns, whether one of them is the whole column, and
whether it is a B-tree (MariaDB enforces UNIQUE on a long column by a hash, in no order)."""
REWRITING_TRIGGERS = (
    "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = %s"
    " AND EVENT_OBJECT_TABLE = %s AND ACTION_TIMING = 'BEFORE'"
    " AND EVENT_MANIPULATION IN ('INSERT', 'UPDATE') ORDER BY TRIGGER_NAME"
)


def pads_space(charset: str, collation: str) -> str:
    """Whether the collation takes ``'a '`` for ``'a'`` (PAD SPACE): asked of the server
    itself, since MariaDB's catalog has no PAD_ATTRIBUTE. Names must be catalog names."""
    return (
        f"SELECT CONVERT('a' USING {charset}) = CONVERT('a ' USING {charset}) COLLATE {collation}"
    )


def unmarked(mark: str | None) -> str:
    """The condition that keeps a soft-deleting job's marked rows out of what is read: they are
    not the target's."""
    return "" if mark is None else f" AND {quote(mark)} IS NULL"


def select_column(table: str, column: str, mark: str | None = None) -> str:
    """Every non-null value of the column."""
    col = quote(column)
    return f"SELECT {col} FROM {quote(table)} WHERE {col} IS NOT NULL{unmarked(mark)}"


ESTIMATED_ROWS = (
    "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
)


def count_values(table: str, column: str, mark: str | None = None) -> str:
    """The column's non-null values, counted (a full scan of its index)."""
    col = quote(column)
    return f"SELECT COUNT({col}) FROM {quote(table)} WHERE {col} IS NOT NULL{unmarked(mark)}"


def select_page(table: str, column: str, after: bool, mark: str | None = None) -> str:
    """A page of the column's values in its order, after the last one of the previous page:
    a range scan of its index, whatever the table's size."""
    col = quote(column)
    where = (f"{col} > %s" if after else f"{col} IS NOT NULL") + unmarked(mark)
    return f"SELECT {col} FROM {quote(table)} WHERE {where} ORDER BY {col} LIMIT %s"


def upsert(table: str, column: str) -> str:
    """Insert one id; an id already there is a no-op. Not INSERT IGNORE: IGNORE would also turn
    "data too long" into a warning and store a truncated id; this skips only the duplicate."""
    col = quote(column)
    return f"INSERT INTO {quote(table)} ({col}) VALUES (%s) ON DUPLICATE KEY UPDATE {col} = {col}"


def equal_to(table: str, column: str, mark: str | None = None) -> str:
    """The first stored value equal to one text under the column's collation."""
    col = quote(column)
    return f"SELECT {col} FROM {quote(table)} WHERE {col} = %s{unmarked(mark)} LIMIT 1"


def any_of(table: str, column: str, count: int, mark: str | None = None) -> str:
    """Whether any of ``count`` texts is stored (equal under the collation)."""
    col = quote(column)
    where = f"{col} IN ({marks(count)}){unmarked(mark)}"
    return f"SELECT 1 FROM {quote(table)} WHERE {where} LIMIT 1"


def values_of(table: str, column: str, count: int, mark: str | None = None) -> str:
    """The stored values equal to any of ``count`` texts."""
    col = quote(column)
    return f"SELECT {col} FROM {quote(table)} WHERE {col} IN ({marks(count)}){unmarked(mark)}"


def weight_strings(charset: str, collation: str, count: int) -> str:
    """Each of ``count`` texts' sort keys under a collation: equal keys, equal texts there."""
    key = f"WEIGHT_STRING(CONVERT(%s USING {charset}) COLLATE {collation})"
    return "SELECT " + ", ".join([key] * count)


def ordered_texts(charset: str, collation: str, count: int) -> str:
    """``count`` texts sorted under a collation (to learn how it orders hex digits)."""
    union = " UNION ALL ".join(["SELECT %s AS v"] * count)
    return f"SELECT v FROM ({union}) AS hex ORDER BY CONVERT(v USING {charset}) COLLATE {collation}"


# --- per-bucket summaries of ObjectId texts (check) ------------------------------------------

# REGEXP is case-insensitive under a _ci collation; (?-i) turns that off both in MariaDB's PCRE
# and in MySQL 8's ICU engine.
_SHAPE = f"'(?-i){OID_TEXT_SQL}'"


def oid_shaped(column: str, binary: bool) -> str:
    """The condition that a value is an ObjectId's text. The length too: REGEXP's ``$`` also
    matches before a final newline, and ``<id>\\n`` would be summed as ``<id>``."""
    col = quote(column)
    value = f"CONVERT({col} USING latin1)" if binary else col
    return f"CHAR_LENGTH({value}) = 24 AND {value} REGEXP {_SHAPE}"


def checksum(column: str, prime: int) -> str:
    """:func:`idsync.ids.checksums` of the hex text in ``column``, for one prime: the 96-bit
    number from its two 48-bit halves (``CONV``), mod ``prime``, squared mod ``prime``."""
    col = quote(column)
    high = f"CAST(CONV(LEFT({col}, 12), 16, 10) AS UNSIGNED)"
    low = f"CAST(CONV(SUBSTRING({col}, 13, 12), 16, 10) AS UNSIGNED)"
    number = f"MOD(MOD({high}, {prime}) * {pow(2, 48, prime)} + MOD({low}, {prime}), {prime})"
    return f"MOD({number} * {number}, {prime})"


# --- the tables idsync creates --------------------------------------------------------------

NO_PAD_BINARY = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")  # MariaDB's, then MySQL 8's
"""Binary NO PAD collations, preferred in this order: two ids are equal only when every byte is."""

COLLATIONS_AMONG = (
    "SELECT COLLATION_NAME FROM information_schema.COLLATIONS"
    f" WHERE COLLATION_NAME IN ({marks(len(NO_PAD_BINARY))})"
)


def target_table(table: str, column: str, collation: str, mark: str | None = None) -> str:
    """The table `idsync init` creates: exact ids, unique (and a soft-deleting job's mark)."""
    col = quote(column)
    marked = f" {quote(mark)} DATETIME(6) NULL," if mark else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {quote(table)} ("
        " `id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        f" {col} VARCHAR(64) CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL,"
        " `created_at` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
        f"{marked} UNIQUE KEY {quote('uq_' + column)} ({col})"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )


RUNS_DDL = f"""CREATE TABLE IF NOT EXISTS `{RUNS_TABLE}` (
  `id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `run_id` VARCHAR(32) NOT NULL,
  `job` VARCHAR(64) NOT NULL,
  `command` VARCHAR(16) NOT NULL,
  `started_at` DATETIME(3) NOT NULL,
  `finished_at` DATETIME(3) NOT NULL,
  `status` VARCHAR(16) NOT NULL,
  `exit_code` TINYINT NOT NULL,
  `dry_run` BOOL NOT NULL,
  `source_ids` BIGINT NULL,
  `missing` BIGINT NULL,
  `inserted` BIGINT NULL,
  `rejected` BIGINT NULL,
  `orphans` BIGINT NULL,
  `duration_s` DOUBLE NOT NULL,
  `error` TEXT NULL,
  `host` VARCHAR(255) NOT NULL,
  `version` VARCHAR(32) NOT NULL,
  `deleted` BIGINT NULL,
  KEY `job_started` (`job`, `started_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
# Which of the columns added since (runs.ADDED) a database's table has.
RUNS_ADDED = (
    "SELECT COLUMN_NAME FROM information_schema.COLUMNS"
    f" WHERE TABLE_SCHEMA = %s AND TABLE_NAME = '{RUNS_TABLE}' AND COLUMN_NAME IN ('deleted')"
)
RUNS_ADD = f"ALTER TABLE `{RUNS_TABLE}` ADD COLUMN `deleted` BIGINT NULL"


def insert_run(fields: Sequence[str]) -> str:
    names = ", ".join(quote(name) for name in fields)
    return f"INSERT INTO `{RUNS_TABLE}` ({names}) VALUES ({marks(len(fields))})"


def recent_runs(fields: Sequence[str], one_job: bool) -> str:
    """The newest runs first, of one job (a parameter) or all; a LIMIT parameter last."""
    names = ", ".join(quote(name) for name in fields)
    where = "WHERE `job` = %s " if one_job else ""
    return (
        f"SELECT {names} FROM `{RUNS_TABLE}` {where}ORDER BY `started_at` DESC, `id` DESC LIMIT %s"
    )


def last_success(fields: Sequence[str], commands: int, statuses: int) -> str:
    """The newest finished, real (not dry) run of a job by one of ``commands``."""
    names = ", ".join(quote(name) for name in fields)
    return (
        f"SELECT {names} FROM `{RUNS_TABLE}` WHERE `job` = %s"
        f" AND `command` IN ({marks(commands)}) AND `status` IN ({marks(statuses)})"
        " AND NOT `dry_run` ORDER BY `finished_at` DESC LIMIT 1"
    )


STATE_DDL = f"""CREATE TABLE IF NOT EXISTS `{STATE_TABLE}` (
  `job` VARCHAR(64) NOT NULL,
  `target` VARCHAR(191) NOT NULL,
  `mode` VARCHAR(16) NOT NULL,
  `resume_token` TEXT NULL,
  `last_seen_id` VARCHAR(255) NULL,
  `last_seen_time` DATETIME(3) NULL,
  `updated_at` DATETIME(3) NOT NULL,
  PRIMARY KEY (`job`, `target`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""

_STATE_COLUMNS = "`mode`, `resume_token`, `last_seen_id`, `last_seen_time`, `updated_at`"
LOAD_STATE = f"SELECT {_STATE_COLUMNS} FROM `{STATE_TABLE}` WHERE `job` = %s AND `target` = %s"
SAVE_STATE = (
    f"INSERT INTO `{STATE_TABLE}` (`job`, `target`, {_STATE_COLUMNS})"
    " VALUES (%s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(3))"
    " ON DUPLICATE KEY UPDATE `mode` = VALUES(`mode`),"
    " `resume_token` = VALUES(`resume_token`), `last_seen_id` = VALUES(`last_seen_id`),"
    " `last_seen_time` = VALUES(`last_seen_time`), `updated_at` = VALUES(`updated_at`)"
)


# --- what doctor asks -----------------------------------------------------------------------

PAD_ATTRIBUTE = "SELECT PAD_ATTRIBUTE FROM information_schema.COLLATIONS WHERE COLLATION_NAME = %s"
VISIBLE_COLUMNS = (
    "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s"
    " AND TABLE_NAME = %s AND EXTRA NOT LIKE %s ORDER BY ORDINAL_POSITION"
)
LOCAL_INFILE = "SELECT @@local_infile"
UTC_NOW = "SELECT UTC_TIMESTAMP(6)"
BYTES_SENT = "SHOW SESSION STATUS LIKE 'Bytes_sent'"


def insert_nothing(table: str, columns: Sequence[str]) -> str:
    """An insert of no row: the server checks its privileges (and strict mode's NOT NULLs)
    exactly as for a real one, and writes nothing."""
    names, nulls = ", ".join(quote(c) for c in columns), ", ".join(["NULL"] * len(columns))
    return f"INSERT INTO {quote(table)} ({names}) SELECT {nulls} FROM DUAL WHERE FALSE"


def write_probes(table: str, column: str) -> list[str]:
    """What `run` does to the table, on no row: read the column, then the upsert (INSERT … ON
    DUPLICATE KEY UPDATE needs UPDATE as well as INSERT)."""
    col = quote(column)
    return [
        f"SELECT {col} FROM {quote(table)} LIMIT 0",
        f"{insert_nothing(table, (column,))} ON DUPLICATE KEY UPDATE {col} = {col}",
    ]


def state_create_probe() -> str:
    """A CREATE of the state table bound to fail after the privilege check (a repeated column)."""
    return f"CREATE TABLE `{STATE_TABLE}` (probe INT, probe INT)"


def state_probes(columns: Sequence[str]) -> list[str]:
    """What `watch` does to its checkpoint row, on no row: read it, then upsert it."""
    key = ("job", "target")
    updates = ", ".join(f"`{c}` = VALUES(`{c}`)" for c in columns if c not in key)
    upsert_nothing = f"{insert_nothing(STATE_TABLE, columns)} ON DUPLICATE KEY UPDATE"
    return [
        f"SELECT `job` FROM `{STATE_TABLE}` LIMIT 0",
        f"{upsert_nothing} {updates or '`job` = `job`'}",
    ]


def history_probes(columns: Sequence[str]) -> list[str]:
    """What every run does to `idsync_runs`, on no row: append to it; `status` reads it."""
    return [insert_nothing(RUNS_TABLE, columns), f"SELECT `run_id` FROM `{RUNS_TABLE}` LIMIT 0"]


# --- the ledger of `idsync work` (see idsync.work.ledger) ------------------------------------

LEDGER = ledger_sql(
    f"""CREATE TABLE IF NOT EXISTS `{RANGES_TABLE}` (
  `job` VARCHAR(191) NOT NULL,
  `round_id` BIGINT NOT NULL,
  `idx` INT NOT NULL,
  `kind` VARCHAR(8) NOT NULL,
  `lo` CHAR(24) NULL,
  `hi` CHAR(24) NULL,
  `state` VARCHAR(8) NOT NULL,
  `owner` VARCHAR(200) NULL,
  `lease_until` DATETIME(3) NULL,
  `attempts` INT NOT NULL,
  `beats` BIGINT NOT NULL DEFAULT 0,
  `source_ids` BIGINT NULL,
  `inserted` BIGINT NULL,
  `rejected` BIGINT NULL,
  `finished_at` DATETIME(3) NULL,
  PRIMARY KEY (`job`, `round_id`, `idx`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
    now="UTC_TIMESTAMP(3)",
    later="UTC_TIMESTAMP(3) + INTERVAL %s SECOND",
)


def select_between(table: str, column: str, mark: str | None = None) -> str:
    """The column's values from one text to another, both included."""
    col = quote(column)
    where = f"{col} >= %s AND {col} <= %s{unmarked(mark)}"
    return sqltext.select_where(quote(table), col, where)
