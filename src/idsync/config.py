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
from urllib.parse import parse_qsl, unquote, urlsplit

from idsync.errors import ConfigError

BUILTIN_JOB = "update-cluster-id"
CONFIG_FILE = "idsync.toml"

_SQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
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
    """Target table in the MySQL database named by the URL."""
    column: str = "cluster_id"
    """Target column; a UNIQUE index on it is what makes concurrent writers safe."""
    batch_size: int = 5000
    """Ids inserted and committed per transaction: a crash loses at most one batch."""
    mongo_db: str | None = None
    """MongoDB database; by default the one named in the URI's path."""
    allow_missing_source: bool = False
    """Accept a source collection that does not exist (read as empty). Otherwise it is a config
    error: MongoDB creates collections lazily, so a misspelt name would read as empty."""

    def __post_init__(self) -> None:
        _check(_JOB_NAME, self.name, "job name")
        _check(_COLLECTION, self.collection, "collection")
        if self.collection.startswith("system."):
            raise ConfigError(f"invalid collection {self.collection!r}: system collections")
        _check(_FIELD, self.field, "field")
        _check(_SQL_NAME, self.table, "table")
        _check(_SQL_NAME, self.column, "column")
        if self.mongo_db is not None:
            _check(_SQL_NAME, self.mongo_db, "MongoDB database")
        if not isinstance(self.allow_missing_source, bool):
            raise ConfigError(
                f"allow_missing_source must be true or false: {self.allow_missing_source!r}"
            )
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 100_000:
            raise ConfigError(f"batch_size must be an integer from 1 to 100000: {self.batch_size}")


@dataclass(frozen=True)
class MySQLURL:
    """A parsed ``mysql://user:password@host:port/database?option=value`` URL."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    unix_socket: str | None = None

    @classmethod
    def parse(cls, url: str) -> MySQLURL:
        try:
            parts = urlsplit(url)
            port = parts.port or 3306
        except ValueError as exc:
            raise ConfigError(f"invalid MySQL URL: {exc}") from None
        if parts.scheme not in ("mysql", "mariadb", "mysql+mysqldb"):
            raise ConfigError("MySQL URL must start with mysql://")
        database = unquote(parts.path.lstrip("/"))
        if not database:
            raise ConfigError("MySQL URL names no database: mysql://user:pass@host:port/DATABASE")
        _check(_SQL_NAME, database, "MySQL database")
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - {"unix_socket"}
        if unknown:
            raise ConfigError(f"unknown MySQL URL option(s): {', '.join(sorted(unknown))}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=database,
            unix_socket=query.get("unix_socket"),
        )

    @property
    def address(self) -> str:
        return self.unix_socket or f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Where the servers are and how patiently to talk to them."""

    mongo_uri: str = field(repr=False)
    """MongoDB connection string; its path names the default database."""
    mysql_url: str = field(repr=False)
    """MySQL/MariaDB URL, mysql://user:password@host:port/database (percent-encode specials)."""
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

    def __post_init__(self) -> None:
        if not self.mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError("MongoDB URI must start with mongodb:// (set IDSYNC_MONGO_URI)")
        MySQLURL.parse(self.mysql_url)
        for name in ("connect_timeout_s", "socket_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.lock_timeout_s < 0:
            raise ConfigError("lock_timeout_s must not be negative")
        if not 1 <= self.read_batch_size <= 1_000_000:
            raise ConfigError("read_batch_size must be from 1 to 1000000")
        if not 0 <= self.retries <= 20 or self.retry_backoff_s < 0:
            raise ConfigError("retries must be from 0 to 20, retry_backoff_s not negative")

    @property
    def mysql(self) -> MySQLURL:
        return MySQLURL.parse(self.mysql_url)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Passwords to scrub from anything shown to a person."""
        found = [self.mysql.password]
        mongo = urlsplit(self.mongo_uri)
        if mongo.password:
            found += [mongo.password, unquote(mongo.password)]
        return tuple(s for s in found if s)


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
    """Ignore the max-inserts guards."""
    record_history: bool = True
    """Append the run to the `idsync_runs` table (when `idsync init` has created it)."""
    history_command: str = "run"
    """What the history row calls the run: `run`, or `watch` for a watcher's full pass."""


@dataclass(frozen=True)
class FileConfig:
    """What an ``idsync.toml`` says: settings (partial) and named jobs."""

    settings: Mapping[str, Any]
    jobs: Mapping[str, Job]
    path: Path | None = None


_SETTING_KEYS = {f.name for f in fields(Settings)}
_JOB_KEYS = {f.name for f in fields(Job)} - {"name"}


def load_file(path: Path) -> FileConfig:
    """Read and validate a TOML config; unknown keys are errors, not silently ignored."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    unknown = set(data) - {"settings", "jobs"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    settings = data.get("settings", {})
    bad = set(settings) - _SETTING_KEYS
    if bad:
        raise ConfigError(f"{path}: unknown key(s) in [settings]: {', '.join(sorted(bad))}")
    jobs: dict[str, Job] = {}
    for name, body in data.get("jobs", {}).items():
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [jobs.{name}] must be a table")
        bad = set(body) - _JOB_KEYS
        if bad:
            raise ConfigError(f"{path}: unknown key(s) in [jobs.{name}]: {', '.join(sorted(bad))}")
        jobs[name] = Job(name=name, **body)
    return FileConfig(settings=settings, jobs=jobs, path=path)


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


def resolve_settings(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    file: FileConfig | None,
    need_mongo: bool = True,
) -> Settings:
    """Settings from flags (non-None values), then the environment, then the file.

    Commands that only read MySQL (``status``) pass ``need_mongo=False``.
    """
    merged: dict[str, Any] = dict(file.settings) if file else {}
    for key, var in (("mongo_uri", "IDSYNC_MONGO_URI"), ("mysql_url", "IDSYNC_MYSQL_URL")):
        if env.get(var):
            merged[key] = env[var]
    merged.update({k: v for k, v in flags.items() if v is not None})
    if not need_mongo:
        merged.setdefault("mongo_uri", _UNUSED_MONGO)
    for key, var in (("mongo_uri", "IDSYNC_MONGO_URI"), ("mysql_url", "IDSYNC_MYSQL_URL")):
        if not merged.get(key):
            raise ConfigError(f"no {key}: set {var}, pass --{key.replace('_', '-')}, or [settings]")
    try:
        return Settings(**merged)
    except TypeError as exc:
        raise ConfigError(f"invalid settings: {exc}") from None
