"""`doctor`: check both sides of a job before it runs, each finding with what to do about it."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from idsync.config import Job, Settings
from idsync.errors import IdsyncError
from idsync.ids import UnsupportedId
from idsync.mirroring import changing
from idsync.mongo.source import MongoSource
from idsync.mongo.values import encode_id
from idsync.target import RUNS_TABLE, STATE_TABLE, Column, Target
from idsync.targets import open_target
from idsync.urls import PostgresURL

SAMPLE = 1000
SKEW_WARN_S = 2.0


class Level(StrEnum):
    OK = "ok"
    NOTE = "note"
    """An optional feature missing (change streams, the runs history): exit 0 unless
    ``--strict``."""
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    """One check's outcome."""

    check: str
    level: Level
    detail: str
    fix: str = ""


@dataclass
class DoctorReport:
    job: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, level: Level, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(check, level, detail, fix))

    strict: bool = False
    """Whether a note counts as a warning (exit 4)."""

    @property
    def exit_code(self) -> int:
        levels = {f.level for f in self.findings}
        warned = Level.WARN in levels or (self.strict and Level.NOTE in levels)
        return 1 if Level.FAIL in levels else 4 if warned else 0

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "exit_code": self.exit_code,
                "findings": [asdict(f) for f in self.findings]}  # fmt: skip


def diagnose(job: Job, settings: Settings) -> DoctorReport:
    """Run every check that the reachable servers allow; never raises for a server's state."""
    report = DoctorReport(job.name)
    opened: list[MongoSource] = []
    # The client is made before any probe: a mongodb+srv name that does not resolve fails here.
    mongo_ok = _check(report, "mongodb", lambda: _mongo(opened, job, settings))
    with open_target(settings, job) as target, contextlib.ExitStack() as stack:
        source = stack.enter_context(opened[0]) if opened else None
        server = "postgres" if isinstance(settings.target, PostgresURL) else "mysql"
        mysql_ok = _check(report, server, lambda: _server(server, target))
        column: Column | None = None
        if mysql_ok:
            column = _target_checks(report, target, job)
        if source is not None and mongo_ok:
            if _check(report, "collection", lambda: _collection(source, job)):
                _check(report, "id-types", lambda: _id_types(source, column))
            _check(report, "change-streams", lambda: _change_streams(source))
            if mysql_ok:
                _check(report, "clock-skew", lambda: _clock_skew(source, target))
    return report


def _check(report: DoctorReport, name: str, probe: Callable[[], Finding | None]) -> bool:
    """Add the probe's finding (or its error as a failure; nothing when the question does not
    apply to the server); True unless it failed."""
    try:
        finding = probe()
    except IdsyncError as exc:
        finding = Finding(name, Level.FAIL, str(exc).splitlines()[0], _FIXES.get(name, ""))
    if finding is not None:
        report.findings.append(finding)
    return finding is None or finding.level is not Level.FAIL


_FIXES = {
    "mongodb": "check IDSYNC_MONGO_URI and that the server is up",
    "mysql": "check IDSYNC_MYSQL_URL, the user's password and that the server is up",
    "postgres": "check IDSYNC_TARGET_URL, the user's password and that the server is up",
    "table": "run `idsync init`",
    "collection": "correct the job's collection, or set allow_missing_source = true in the job",
}


def _mongo(opened: list[MongoSource], job: Job, settings: Settings) -> Finding:
    source = MongoSource(settings, job)
    opened.append(source)
    info = source.ping(require_collection=False)
    return Finding("mongodb", Level.OK, f"{info.flavour} {info.version} at {source.address}")


def _collection(source: MongoSource, job: Job) -> Finding:
    where = f"{source.database}.{job.collection}"
    problem = source.missing_collection()
    if problem is None:
        return Finding("collection", Level.OK, f"{where} exists")
    if job.allow_missing_source:
        return Finding("collection", Level.WARN, f"{problem}: read as empty (allow_missing_source)",
                       _FIXES["collection"])  # fmt: skip
    return Finding("collection", Level.FAIL, problem, _FIXES["collection"])


def _server(name: str, target: Target) -> Finding:
    target.connect()
    return Finding(name, Level.OK, f"{target.probes.server_version()} at {target.address}")


def _target_checks(report: DoctorReport, target: Target, job: Job) -> Column | None:
    found: list[Column] = []

    def table() -> Finding:
        found.append(target.inspect())
        return Finding("table", Level.OK, f"{target.database}.{job.table}.{job.column}")

    if not _check(report, "table", table):
        return None
    column = found[0]
    _check(report, "unique-index", lambda: _unique(column, job))
    _check(report, "column", lambda: _column_fit(target, column))
    _check(report, "privileges", lambda: _privileges(target, job))
    _check(report, "state", lambda: _state(target))
    _check(report, "history", lambda: _history(target))
    _check(report, "local-infile", lambda: _local_infile(target))
    _check(report, "foreign-keys", lambda: _references(target, job))
    return column


def _references(target: Target, job: Job) -> Finding:
    """The foreign keys that reference the table: what mirror mode (`--delete-orphans`) keeps
    (RESTRICT, NO ACTION) and what it refuses to touch without `--allow-cascade`."""
    found = target.references()
    if not found:
        return Finding(
            "foreign-keys", Level.OK, f"none reference {job.table} (that this user sees)"
        )
    listed = "; ".join(str(ref) for ref in found)
    if job.delete_orphans and changing(job, found):
        return Finding(
            "foreign-keys", Level.WARN,
            f"{listed}: removing an orphan may delete or change rows elsewhere; a mirroring run"
            " refuses (exit 3)", "drop delete_orphans, or run with --allow-cascade if meant",
        )  # fmt: skip
    return Finding("foreign-keys", Level.OK, f"{listed} (a mirror keeps referenced rows)")


def _unique(column: Column, job: Job) -> Finding:
    if column.unique:
        return Finding("unique-index", Level.OK, f"UNIQUE index on {job.column}")
    return Finding(
        "unique-index", Level.WARN, "no UNIQUE index: writers other than idsync may duplicate",
        f"ALTER TABLE {job.table} ADD UNIQUE ({job.column})",
    )  # fmt: skip


def _column_fit(target: Target, column: Column) -> Finding:
    fit, collation = column.fit, column.collation or "binary"
    room = fit.max_chars or fit.max_bytes
    size = f"({room})" if room else ""
    detail = f"{column.data_type}{size} {fit.charset or ''} {collation}"
    problems = []
    if room is not None and room < 24:
        problems.append("too short for a 24-character ObjectId")
    if collation.endswith("_ci"):
        problems.append("case-insensitive: ids differing only in case collide")
    if column.deterministic is False:
        problems.append("nondeterministic collation: ids it takes for equal collide")
    if target.probes.pads(collation):
        problems.append("PAD SPACE: ids differing only in trailing spaces collide")
    elif fit.trailing_spaces:
        problems.append(f"pads with spaces: {fit.trailing_spaces}")
    if fit.charset in ("utf8mb3", "utf8", "latin1", "ascii", "ucs2"):
        problems.append(f"{fit.charset} cannot hold every string id")
    if not problems:
        return Finding("column", Level.OK, detail.strip())
    fix = f"create the column as {target.probes.exact_column()}"
    return Finding("column", Level.WARN, f"{detail.strip()}: {'; '.join(problems)}", fix)


def _privileges(target: Target, job: Job) -> Finding:
    """What `run` does to the table: read the column, then insert (on MySQL an upsert, which
    needs UPDATE as well as INSERT)."""
    probes, where = target.probes, f"{target.database}.{job.table}"
    denied = probes.write_denials()
    needed = probes.write_privileges
    if job.delete_orphans:  # mirror mode locks its rows, then deletes (or marks) them
        deletes = job.mark_column is None
        denied += probes.mirror_denials(deletes)
        more = ("UPDATE", "DELETE") if deletes else ("UPDATE",)  # FOR UPDATE: PostgreSQL's UPDATE
        needed = tuple(dict.fromkeys((*needed, *more)))
    if not denied:
        return Finding("privileges", Level.OK, f"{', '.join(needed)} on {where}")
    return Finding("privileges", Level.FAIL, "; ".join(denied), probes.grant(needed, job.table))


def _state(target: Target) -> Finding:
    """What `watch` does to `idsync_state`: create it (MySQL asks for CREATE at every start, the
    table there or not), then read and upsert its checkpoint."""
    where = f"{target.database}.{STATE_TABLE}"
    denied = target.probes.state_denials()
    if not denied:
        return Finding("state", Level.OK, f"CREATE, SELECT, INSERT and UPDATE on {where}")
    fix = target.probes.grant(("CREATE", "SELECT", "INSERT", "UPDATE"), STATE_TABLE)
    return Finding("state", Level.FAIL, f"`idsync watch` would fail: {'; '.join(denied)}", fix)


def _history(target: Target) -> Finding:
    probes = target.probes
    if not probes.history_present():
        return Finding("history", Level.NOTE, f"no {RUNS_TABLE}: runs leave no history",
                       "run `idsync init`")  # fmt: skip
    denied = probes.history_denials()
    if not denied:
        return Finding("history", Level.OK, f"{RUNS_TABLE} present, INSERT and SELECT allowed")
    # A history write never fails a run, so this warns: runs work but leave no record.
    return Finding("history", Level.WARN, f"history not written or read: {'; '.join(denied)}",
                   target.probes.grant(("SELECT", "INSERT"), RUNS_TABLE))  # fmt: skip


def _local_infile(target: Target) -> Finding | None:
    setting = target.probes.local_infile()
    if setting is None:
        return None  # the server has no such setting
    return Finding(
        "local-infile", Level.OK, f"{'ON' if setting else 'OFF'} (idsync does not need it)"
    )


def _id_types(source: MongoSource, column: Column | None) -> Finding:
    kinds: Counter[str] = Counter()
    longest = 0
    for value in source.sample(SAMPLE):
        try:
            text = encode_id(value)
            kinds[type(value).__name__] += 1
            longest = max(longest, len(text))
        except UnsupportedId as exc:
            kinds[exc.reason] += 1
    seen = ", ".join(f"{name} {count}" for name, count in kinds.most_common())
    detail = f"{sum(kinds.values())} sampled: {seen or 'collection empty'}"
    bad = [k for k in kinds if k.startswith(("unsupported", "empty"))]
    room = column.fit.max_chars or column.fit.max_bytes if column else None
    if bad or (room is not None and longest > room):
        return Finding("id-types", Level.WARN, detail + f"; longest id {longest} characters",
                       "ids of these types are rejected; see the README's id table")  # fmt: skip
    return Finding("id-types", Level.OK, detail)


def _change_streams(source: MongoSource) -> Finding:
    if source.supports_change_streams():
        return Finding("change-streams", Level.OK, "available: `idsync watch` follows them")
    return Finding(
        "change-streams", Level.NOTE,
        "not available: `idsync watch` polls for new ObjectIds instead",
        "use a replica set for change streams; polling misses ids that are not recent ObjectIds"
        " until the next full pass",
    )  # fmt: skip


def _server_name(version: str) -> str:
    """ "PostgreSQL 15.4" or "10.11.19-MariaDB-0+deb12u1" or "8.0.36": the server's name."""
    if version.startswith("PostgreSQL"):
        return "PostgreSQL"
    return "MariaDB" if "mariadb" in version.lower() else "MySQL"


def _clock_skew(source: MongoSource, target: Target) -> Finding:
    before = time.time()
    mongo = source.server_time()
    target_time = target.probes.utc_now()
    server = _server_name(target.probes.server_version())
    local = datetime.fromtimestamp((before + time.time()) / 2, UTC)
    if mongo is None:
        return Finding("clock-skew", Level.OK, "MongoDB does not report its time: not measured")
    skews = {
        "MongoDB": (mongo - local).total_seconds(),
        server: (target_time - local).total_seconds(),
    }
    detail = ", ".join(f"{name} {skew:+.2f} s" for name, skew in skews.items()) + " vs this host"
    if max(abs(s) for s in skews.values()) > SKEW_WARN_S:
        return Finding("clock-skew", Level.WARN, detail,
                       "sync the clocks (NTP): polling trusts ObjectId times")  # fmt: skip
    return Finding("clock-skew", Level.OK, detail)
