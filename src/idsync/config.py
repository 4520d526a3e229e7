"""Jobs and settings: frozen, typed, resolved once (flags > environment > TOML file).

A job says *what* to sync (collection/field to table/column); settings say *where* and *how*
(connection URLs, timeouts, batch sizes). Both are validated here, before any server is touched.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from idsync.checks import BadValue, between, check_type, check_types
from idsync.errors import ConfigError
from idsync.urls import MySQLURL as MySQLURL  # noqa: PLC0414 (re-exported, as before)
from idsync.urls import PostgresURL, mongo_userinfo_problem, url_secrets

BUILTIN_JOB = "update-cluster-id"
CONFIG_FILE = "idsync.toml"

_SQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TABLE_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,63}\.)?[A-Za-z_][A-Za-z0-9_]{0,63}")
_COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,119}(\.[A-Za-z0-9_-]{1,119})*")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63})*")
_JOB_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _check(pattern: re.Pattern[str], value: object, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"invalid {what} {value!r}: use a plain name (letters, digits, _)")
    return value


@dataclass(frozen=True)
class Job:
    """One sync: every distinct value of a MongoDB field into one column of a MySQL table."""

    name: str = BUILTIN_JOB
    """Name used in logs, reports and the lock; lowercase letters, digits, '-' and '_'."""
    collection: str = "cluster_trips"
    """Source collection in the MongoDB database."""
    field: str = "_id"
    """Source field; `_id` reads the collection's keys, any other (dotted) field its distinct
    values, array elements included."""
    table: str = "cm_cluster_id"
    """Target table in the database named by the URL; on PostgreSQL `schema.table` names its
    schema (default `public`), where idsync's own tables go too."""
    column: str = "cluster_id"
    """Target column; a UNIQUE index on it is what makes concurrent writers safe."""
    batch_size: int = 5000
    """Ids inserted and committed per transaction: a crash loses at most one batch."""
    mongo_db: str | None = None
    """MongoDB database; by default the one named in the URI's path."""
    allow_missing_source: bool = False
    """Accept a source collection that does not exist (read as empty). Otherwise it is a config
    error: MongoDB creates collections lazily, so a misspelt name would read as empty."""
    delete_orphans: bool = False
    """Mirror the source: a run deletes the rows of ids no document has any more (README,
    "Mirror mode"); off, orphans are counted and sampled only."""
    orphan_action: str = "delete"
    """What mirroring does to an orphan's row: ``delete`` it, or ``mark:<column>``: set that
    date-and-time column to the time instead (soft delete). With a mark column every command
    reads only unmarked rows as the target's, and an id that comes back has its mark cleared."""

    def __post_init__(self) -> None:
        check_types(self)
        _check(_JOB_NAME, self.name, "job name")
        _check(_COLLECTION, self.collection, "collection")
        if self.collection.startswith("system."):
            raise ConfigError(f"invalid collection {self.collection!r}: system collections")
        _check(_FIELD, self.field, "field")
        _check(_TABLE_NAME, self.table, "table")
        _check(_SQL_NAME, self.column, "column")
        if self.mongo_db is not None:
            _check(_SQL_NAME, self.mongo_db, "MongoDB database")
        between("batch_size", self.batch_size, 1, 100_000)
        action, _, mark = self.orphan_action.partition(":")
        if self.orphan_action != "delete" and (action != "mark" or not _SQL_NAME.fullmatch(mark)):
            raise BadValue(
                "orphan_action",
                f"invalid orphan_action {self.orphan_action!r}: use delete or mark:<column>",
            )
        if mark == self.column:
            raise BadValue("orphan_action", "orphan_action's mark column is the ids' column")

    @property
    def mark_column(self) -> str | None:
        """The column that marks an orphan's row (soft delete), if the job has one."""
        return self.orphan_action.partition(":")[2] or None

    @property
    def noun(self) -> str:
        """What the job's ids are called where a run found none: the built-in job keeps the
        original job's words ("No clusters found"), which scripts may grep for."""
        return "clusters" if self.name == BUILTIN_JOB else f"ids in {self.collection}"


_DAY_S = 86_400.0
PLANS = ("auto", "set", "merge")
RANGE_READS = ("auto", "always")


@dataclass(frozen=True)
class Settings:
    """Where the servers are and how patiently to talk to them."""

    mongo_uri: str = field(repr=False)
    """MongoDB connection string; its path names the default database."""
    mysql_url: str | None = field(default=None, repr=False)
    """MySQL/MariaDB URL, mysql://user:password@host:port/database (percent-encode specials);
    the target unless ``target_url`` names it."""
    connect_timeout_s: float = 10.0
    """How long to wait for either server to answer before failing the run."""
    socket_timeout_s: float = 300.0
    """How long one read or write may take before the connection counts as dead."""
    lock_timeout_s: float = 30.0
    """How long to wait for another run of the same target to finish before refusing."""
    read_batch_size: int = 10_000
    """Ids fetched per round trip from each server."""
    retries: int = 2
    """New passes after a transient failure (unreachable, dropped, timed out) before giving up."""
    retry_backoff_s: float = 1.0
    """Pause before the first retry; it doubles for each further one (at most 60 s)."""
    check_exact: bool = False
    """`idsync check` compares every id, not counts per range first (for scheduled runs)."""
    plan: str = "auto"
    """How `run` compares the sides: "set" holds the target's ids in memory (the fastest while
    they fit ``memory_budget_mb``); "merge" reads both sides in `_id` order, a batch at a time,
    in memory of one batch at any size (it needs `_id` ObjectIds and a UNIQUE index on the
    column under a collation that orders hex text as bytes); "auto" merges when the set would
    not fit the budget and the table allows it."""
    memory_budget_mb: int = 130
    """The memory a run may use (its peak RSS, in MiB): what "auto" plans by."""
    workers: int = 1
    """Threads that `run` and `check` work `_id` ranges with, each with its own connections
    (1: one pass, as always). Where ranges cannot be read (see ``range_reads``), one pass."""
    range_reads: str = "auto"
    """When ``workers`` read ranges: "auto" only where the source answers an `_id` range by its
    index (MongoDB); "always" also where each range scans the whole collection (FerretDB,
    mongo-java-server), for measuring."""
    target_url: str | None = field(default=None, repr=False)
    """The target's URL, whichever server: mysql:// or mariadb:// (MySQL, MariaDB),
    postgresql:// or postgres:// (PostgreSQL). The same as ``mysql_url`` if both are given."""

    def __post_init__(self) -> None:
        check_types(self)
        if not self.mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise BadValue("mongo_uri", "MongoDB URI must start with mongodb:// (mongo_uri)")
        problem = mongo_userinfo_problem(self.mongo_uri)
        if problem:
            raise ConfigError(f"invalid MongoDB URI: {problem}")
        if self.target_url and self.mysql_url and self.target_url != self.mysql_url:
            raise ConfigError("target_url and mysql_url name different targets: give one")
        if not (self.target_url or self.mysql_url):
            raise ConfigError("no target: set target_url (or mysql_url)")
        _ = self.target  # parsed now: a bad URL is refused before any server is asked
        # Drivers take milliseconds as integers: below 10 ms a timeout rounds to 0, "none".
        between("connect_timeout_s", self.connect_timeout_s, 0.01, _DAY_S)
        between("socket_timeout_s", self.socket_timeout_s, 0.01, _DAY_S)
        between("lock_timeout_s", self.lock_timeout_s, 0, _DAY_S)
        between("read_batch_size", self.read_batch_size, 1, 1_000_000)
        between("retries", self.retries, 0, 20)
        between("retry_backoff_s", self.retry_backoff_s, 0, 3600)
        between("memory_budget_mb", self.memory_budget_mb, 64, 1 << 20)
        if self.plan not in PLANS:
            raise BadValue("plan", f"plan must be one of {', '.join(PLANS)}, not {self.plan!r}")
        between("workers", self.workers, 1, 64)
        if self.range_reads not in RANGE_READS:
            choices = ", ".join(RANGE_READS)
            raise BadValue("range_reads", f"range_reads must be one of {choices}")

    @property
    def target_text(self) -> str:
        """The target's URL as given."""
        text = self.target_url or self.mysql_url
        assert text is not None  # __post_init__ refused neither
        return text

    @property
    def target(self) -> MySQLURL | PostgresURL:
        """The target's URL, parsed by its scheme."""
        scheme = self.target_text.partition("://")[0].lower()
        if scheme in ("postgresql", "postgres"):
            return PostgresURL.parse(self.target_text)
        return MySQLURL.parse(self.target_text)

    @property
    def mysql(self) -> MySQLURL:
        """The target's URL when it is MySQL or MariaDB."""
        target = self.target
        if not isinstance(target, MySQLURL):
            raise ConfigError("the target is not MySQL or MariaDB")
        return target

    @property
    def secrets(self) -> tuple[str, ...]:
        """Passwords to scrub from anything shown to a person."""
        found = (self.target.password, *url_secrets(self.target_text), *url_secrets(self.mongo_uri))
        return tuple(dict.fromkeys(s for s in found if s))


@dataclass(frozen=True)
class RunOptions:
    """Choices for one run that are not part of the job's definition."""

    dry_run: bool = False
    """Compute and report what would be inserted; write nothing."""
    allow_empty_source: bool = False
    """Let a run whose source has no ids proceed while the target has rows."""
    log_ids: bool = True
    """Log one line per inserted id, as the original job did."""
    max_inserts: int | None = None
    """Refuse (insert nothing) when more ids than this are missing."""
    max_inserts_fraction: float | None = None
    """Refuse when more ids are missing than this share of the target's rows (0.1 = 10%)."""
    force: bool = False
    """Ignore the max-inserts and max-deletes guards."""
    delete_orphans: bool | None = None
    """Delete the rows of orphans after the inserts; None: as the job says."""
    max_deletes: int | None = None
    """Refuse (delete nothing) when more orphans than this are found."""
    max_deletes_fraction: float | None = None
    """Refuse when more orphans than this share of the target's rows are found; with neither
    limit given, 1% (and at least 10 rows)."""
    allow_cascade: bool = False
    """Delete even when a foreign key would delete or change rows of another table."""

    def mirrors(self, job: Job) -> bool:
        """Whether orphans are deleted: as these options say, else as the job does."""
        return job.delete_orphans if self.delete_orphans is None else self.delete_orphans

    record_history: bool = True
    """Append the run to the `idsync_runs` table (when `idsync init` has created it)."""
    history_command: str = "run"
    """What the history row calls the run: `run`, or `watch` for a watcher's full pass."""

    def __post_init__(self) -> None:
        check_types(self)


@dataclass(frozen=True)
class FileConfig:
    """What an ``idsync.toml`` says: settings (partial) and named jobs."""

    settings: Mapping[str, Any]
    jobs: Mapping[str, Job]
    path: Path | None = None


_SETTING_TYPES = {f.name: str(f.type) for f in fields(Settings)}
_SETTING_KEYS = set(_SETTING_TYPES)
_JOB_KEYS = {f.name for f in fields(Job)} - {"name"}
# The built-in job's defaults describe one table; a job from a file that left any of these out
# would silently write into it.
_JOB_REQUIRED = ("collection", "table", "column")


def load_file(path: Path) -> FileConfig:
    """Read and validate a TOML config; unknown keys are errors, not silently ignored."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    unknown = set(data) - {"settings", "jobs"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: [settings] must be a table")
    bad = set(settings) - _SETTING_KEYS
    if bad:
        raise ConfigError(f"{path}: unknown key(s) in [settings]: {', '.join(sorted(bad))}")
    for key, value in settings.items():
        try:
            check_type(key, value, _SETTING_TYPES[key])
        except BadValue as exc:
            raise BadValue(key, f"{path}: [settings] {exc}") from None
    jobs_table = data.get("jobs", {})
    if not isinstance(jobs_table, dict):
        raise ConfigError(f"{path}: [jobs] must be a table of [jobs.NAME] tables")
    return FileConfig(settings=settings, jobs=_load_jobs(path, jobs_table), path=path)


def _load_jobs(path: Path, table: Mapping[str, Any]) -> dict[str, Job]:
    jobs: dict[str, Job] = {}
    for name, body in table.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [jobs.{name}] must be a table")
        bad = set(body) - _JOB_KEYS
        if bad:
            raise ConfigError(f"{path}: unknown key(s) in [jobs.{name}]: {', '.join(sorted(bad))}")
        missing = [key for key in _JOB_REQUIRED if key not in body]
        if missing:
            raise ConfigError(
                f"{path}: [jobs.{name}] must name its collection, table and column "
                f"(field defaults to _id); missing: {', '.join(sorted(missing))}"
            )
        try:
            jobs[name] = Job(name=name, **body)
        except BadValue as exc:
            raise BadValue(exc.key, f"{path}: [jobs.{name}] {exc}") from None
    return jobs


def find_file(explicit: str | None, env: Mapping[str, str]) -> FileConfig | None:
    """The config named by ``--config``, else ``IDSYNC_CONFIG``, else ``./idsync.toml`` if any."""
    name = explicit or env.get("IDSYNC_CONFIG")
    if name:
        return load_file(Path(name))
    default = Path(CONFIG_FILE)
    return load_file(default) if default.is_file() else None


def resolve_job(name: str | None, file: FileConfig | None, mongo_db: str | None) -> Job:
    """The named job from the file, or the built-in one; ``--mongo-db`` overrides its database."""
    name = name or BUILTIN_JOB
    jobs = file.jobs if file else {}
    if name in jobs:
        job = jobs[name]
    elif name == BUILTIN_JOB:
        job = Job()
    else:
        known = ", ".join(sorted({BUILTIN_JOB, *jobs}))
        raise ConfigError(f"unknown job {name!r}; known jobs: {known}")
    return replace(job, mongo_db=mongo_db) if mongo_db else job


_UNUSED_MONGO = "mongodb://unused.invalid/"
_URL_VARIABLES = (
    ("mongo_uri", "IDSYNC_MONGO_URI"),
    ("mysql_url", "IDSYNC_MYSQL_URL"),
    ("target_url", "IDSYNC_TARGET_URL"),
)


def resolve_settings(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    file: FileConfig | None,
    need_mongo: bool = True,
) -> Settings:
    """Settings from flags (non-None values), then the environment, then the file.

    Commands that only read MySQL (``status``) pass ``need_mongo=False``.
    """
    from_env = {key: env[var] for key, var in _URL_VARIABLES if env.get(var)}
    given = {k: v for k, v in flags.items() if v is not None}
    levels = (dict(file.settings) if file else {}, from_env, given)
    merged: dict[str, Any] = {}
    target = None
    for level in levels:  # file, environment, flags: a higher level names the target alone
        target = _target_of(level) or target
        merged.update(level)
    merged.pop("mysql_url", None)
    merged["target_url"] = target
    if not need_mongo:  # whatever the MongoDB URI says, such a command never reads it
        merged["mongo_uri"] = _UNUSED_MONGO
    if not merged.get("mongo_uri"):
        raise ConfigError("no mongo_uri: set IDSYNC_MONGO_URI, pass --mongo-uri, or [settings]")
    if not target:
        raise ConfigError(
            "no target: set IDSYNC_TARGET_URL (or IDSYNC_MYSQL_URL), pass --target-url,"
            " or [settings] target_url"
        )
    try:
        return Settings(**merged)
    except TypeError as exc:
        raise ConfigError(f"invalid settings: {exc}") from None


def _target_of(level: Mapping[str, Any]) -> Any:
    """The target one level names (a file, the environment, the flags), if any: its target_url
    or mysql_url, which must agree when it gives both."""
    target, mysql = level.get("target_url"), level.get("mysql_url")
    if target and mysql and target != mysql:
        raise ConfigError("target_url and mysql_url name different targets: give one")
    return target or mysql
