"""The `idsync` command: thin click commands over the library; errors become exit codes.

Exit codes: 0 ok, 1 failed, 2 usage or config error, 3 refused by a safety guard,
4 finished but some ids rejected.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import click

from idsync import __version__
from idsync.config import (
    BUILTIN_JOB,
    FileConfig,
    Job,
    RunOptions,
    Settings,
    find_file,
    resolve_job,
    resolve_settings,
)
from idsync.errors import ConfigError, IdsyncError
from idsync.observability import configure_logging, redact
from idsync.report import SyncReport
from idsync.source import ScanOrder
from idsync.sync import Progress, sync
from idsync.target import MySQLTarget

_PASSWORD_IN_URL = re.compile(r"://[^:/@]*:([^@/]+)@")


@dataclass(frozen=True)
class Context:
    """What every command resolves first, once."""

    job: Job
    settings: Settings
    secrets: tuple[str, ...]
    as_json: bool


def _raw_secrets(*urls: str | None) -> tuple[str, ...]:
    """Passwords in URLs, found before parsing, so even a malformed URL never leaks one."""
    return tuple(m for url in urls if url for m in _PASSWORD_IN_URL.findall(url))


def _die(message: str, code: int, secrets: tuple[str, ...], as_json: bool, job: str) -> NoReturn:
    message = redact(message, secrets)
    if as_json:
        click.echo(
            json.dumps({"job": job, "status": "failed", "error": message, "exit_code": code})
        )
    click.echo(f"idsync: {message}", err=True)
    sys.exit(code)


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--config",
            "config_path",
            metavar="PATH",
            help="TOML file with [settings] and [jobs.NAME] (default ./idsync.toml; "
            "env IDSYNC_CONFIG).",
        ),
        click.option(
            "--job", "job_name", metavar="NAME", help=f"Job to run (default {BUILTIN_JOB})."
        ),
        click.option("--mongo-uri", metavar="URI", help="MongoDB URI (env IDSYNC_MONGO_URI)."),
        click.option(
            "--mysql-url",
            metavar="URL",
            help="mysql://user:pass@host:port/db (env IDSYNC_MYSQL_URL).",
        ),
        click.option("--mongo-db", metavar="NAME", help="MongoDB database (default: URI path)."),
        click.option(
            "--connect-timeout",
            type=float,
            metavar="S",
            help="Seconds to wait for a server to answer (default 10).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout."),
        click.option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="Log lines on stderr as text or JSON.",
        ),
        click.option(
            "--log-level",
            type=click.Choice(["debug", "info", "warning", "error"]),
            default="info",
            show_default=True,
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _resolve(kw: dict[str, Any], extra_settings: dict[str, Any]) -> Context:
    raw = _raw_secrets(
        kw["mongo_uri"],
        kw["mysql_url"],
        os.environ.get("IDSYNC_MONGO_URI"),
        os.environ.get("IDSYNC_MYSQL_URL"),
    )
    try:
        file: FileConfig | None = find_file(kw["config_path"], os.environ)
        job = resolve_job(kw["job_name"], file, kw["mongo_db"])
        flags = {
            "mongo_uri": kw["mongo_uri"],
            "mysql_url": kw["mysql_url"],
            "connect_timeout_s": kw["connect_timeout"],
            **extra_settings,
        }
        settings = resolve_settings(flags, os.environ, file)
    except ConfigError as exc:
        _die(str(exc), exc.exit_code, raw, kw["as_json"], kw["job_name"] or BUILTIN_JOB)
    secrets = tuple(dict.fromkeys(raw + settings.secrets))
    configure_logging(kw["log_level"], kw["log_format"], secrets, buffered=not sys.stderr.isatty())
    return Context(job, settings, secrets, kw["as_json"])


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    from idsync.progress import RichProgress  # noqa: PLC0415 (rich loads only for terminals)

    with RichProgress() as bar:
        yield bar


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="idsync")
def cli() -> None:
    """Keep SQL reference tables of MongoDB ids complete, fast, and provably so."""


@cli.command()
@_common
@click.option("--dry-run", is_flag=True, help="Compute and report; write nothing.")
@click.option(
    "--allow-empty-source",
    is_flag=True,
    help="Proceed when the source has no ids but the target has rows.",
)
@click.option("--batch-size", type=int, metavar="N", help="Ids per insert transaction.")
@click.option("--read-batch-size", type=int, metavar="N", help="Ids per read round trip.")
@click.option(
    "--lock-timeout",
    type=float,
    metavar="S",
    help="Seconds to wait for another run of the same target (default 30).",
)
@click.option(
    "--log-ids/--no-log-ids",
    default=True,
    show_default=True,
    help="One 'Inserted <column>: <id>' line per id, as the original job logged.",
)
@click.option(
    "--scan-order",
    type=click.Choice(["auto", *[o.value for o in ScanOrder]]),
    default="auto",
    show_default=True,
    help="Walk the source by its _id index, or in natural order (auto: by server).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(**kw: Any) -> None:
    """Insert every id of the source that the target lacks, in committed batches."""
    ctx = _resolve(
        kw, {"read_batch_size": kw["read_batch_size"], "lock_timeout_s": kw["lock_timeout"]}
    )
    job = replace(ctx.job, batch_size=kw["batch_size"]) if kw["batch_size"] else ctx.job
    options = RunOptions(
        dry_run=kw["dry_run"], allow_empty_source=kw["allow_empty_source"], log_ids=kw["log_ids"]
    )
    order = None if kw["scan_order"] == "auto" else ScanOrder(kw["scan_order"])
    show_bar = sys.stderr.isatty() and not kw["quiet"] and not ctx.as_json
    try:
        with _progress(show_bar) as bar:
            report = sync(job, ctx.settings, options, progress=bar, scan_order=order)
    except IdsyncError as exc:
        report = getattr(exc, "report", None) or SyncReport(job=job.name, dry_run=options.dry_run)
    _emit(report, ctx)


def _emit(report: SyncReport, ctx: Context) -> NoReturn:
    text = report.to_json() if ctx.as_json else report.to_text()
    click.echo(redact(text, ctx.secrets))
    logging.shutdown()
    if report.error:
        click.echo(f"idsync: {redact(report.error, ctx.secrets)}", err=True)
    sys.exit(report.exit_code)


@cli.command()
@_common
def init(**kw: Any) -> None:
    """Create the job's target table if it is missing (never alters an existing one)."""
    ctx = _resolve(kw, {})
    job = ctx.job
    try:
        with MySQLTarget(ctx.settings, job) as target:
            target.connect()
            created = target.create_table()
            column = target.inspect()
    except IdsyncError as exc:
        _die(str(exc), exc.exit_code, ctx.secrets, ctx.as_json, job.name)
    where = f"{ctx.settings.mysql.database}.{job.table}"
    result = {
        "job": job.name,
        "status": "ok",
        "table": where,
        "created": created,
        "column": job.column,
        "collation": column.collation,
        "unique_index": column.unique,
    }
    if ctx.as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(
            f"{where}: {'created' if created else 'exists, left as it is'} "
            f"({job.column}, collation {column.collation}, "
            f"{'unique' if column.unique else 'NOT unique'})"
        )


@cli.command()
@click.option("--config", "config_path", metavar="PATH", help="TOML config file.")
def jobs(config_path: str | None) -> None:
    """List the jobs: the built-in one and those in the config file."""
    try:
        file = find_file(config_path, os.environ)
    except ConfigError as exc:
        _die(str(exc), exc.exit_code, (), False, BUILTIN_JOB)
    known = dict(file.jobs) if file else {}
    known.setdefault(BUILTIN_JOB, Job())
    for job in known.values():
        click.echo(
            f"{job.name}: {job.collection}.{job.field} -> {job.table}.{job.column} "
            f"(batch {job.batch_size})"
        )


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="idsync")
    except Exception as exc:  # a bug: say so in one line, never with a password in it
        secrets = _raw_secrets(
            os.environ.get("IDSYNC_MONGO_URI"), os.environ.get("IDSYNC_MYSQL_URL"), *sys.argv
        )
        click.echo(
            f"idsync: internal error: {type(exc).__name__}: {redact(str(exc), secrets)}", err=True
        )
        sys.exit(1)
