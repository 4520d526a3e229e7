"""What every command shares: options, resolving the configuration once, printing, exiting."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import click

from idsync.cli.observability import configure_logging
from idsync.config import (
    BUILTIN_JOB,
    BadValue,
    FileConfig,
    Job,
    Settings,
    find_file,
    resolve_job,
    resolve_settings,
)
from idsync.envelope import SUCCESS, BaseReport
from idsync.errors import ConfigError, GuardError, IdsyncError, as_idsync_error
from idsync.run.report import SyncReport
from idsync.run.sync import Progress
from idsync.targets import open_target
from idsync.urls import redact, url_secrets


@dataclass(frozen=True)
class Context:
    """What every command resolves first, once."""

    job: Job
    settings: Settings
    secrets: tuple[str, ...]
    as_json: bool


def finish(code: int) -> NoReturn:
    """Flush what was printed and logged, then end the process with ``code``.

    Not ``sys.exit``: at interpreter exit pymongo joins its monitor threads, which sleep in
    0.5 s steps, so every command would end half a second late. By the time a command
    finishes, its clients are closed and its output flushed; nothing is left to wait for.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def raw_secrets(*urls: str | None) -> tuple[str, ...]:
    """Passwords in URLs, found before parsing, so even a malformed URL never leaks one."""
    return tuple(dict.fromkeys(secret for url in urls for secret in url_secrets(url)))


def die(message: str, code: int, secrets: tuple[str, ...], as_json: bool, job: str) -> NoReturn:
    message = redact(message, secrets)
    if as_json:
        status = "refused" if code == GuardError.exit_code else "failed"
        click.echo(json.dumps({"job": job, "status": status, "error": message, "exit_code": code}))
    click.echo(f"idsync: {message}", err=True)
    finish(code)


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
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
            "--allow-missing-source",
            is_flag=True,
            default=None,
            help="Read a source collection that does not exist as empty (job key"
            " allow_missing_source); otherwise it is an error: a misspelt name reads as empty.",
        ),
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


def pass_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of a full pass that `run` and `watch` share."""
    options = [
        click.option("--batch-size", type=int, metavar="N", help="Ids per insert transaction."),
        click.option("--read-batch-size", type=int, metavar="N", help="Ids per read round trip."),
        click.option(
            "--lock-timeout",
            type=float,
            metavar="S",
            help="Seconds to wait for another run of the same target (default 30).",
        ),
        click.option(
            "--log-ids/--no-log-ids",
            default=True,
            show_default=True,
            help="One 'Inserted <column>: <id>' line per id, as the original job logged.",
        ),
        click.option(
            "--allow-empty-source",
            is_flag=True,
            help="Proceed when the source has no ids but the target has rows.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def resolve(
    kw: dict[str, Any],
    extra_settings: dict[str, Any],
    need_mongo: bool = True,
    buffered_logs: bool = True,
) -> Context:
    """Configuration and logging, once. A daemon passes ``buffered_logs=False``: its lines
    must go out as they happen, not when the next line comes."""
    raw = raw_secrets(
        kw["mongo_uri"],
        kw["mysql_url"],
        os.environ.get("IDSYNC_MONGO_URI"),
        os.environ.get("IDSYNC_MYSQL_URL"),
        kw.get("pushgateway"),
    )
    flags = {
        "mongo_uri": kw["mongo_uri"],
        "mysql_url": kw["mysql_url"],
        "connect_timeout_s": kw["connect_timeout"],
        "batch_size": kw.get("batch_size"),
        **extra_settings,
    }
    given = {key for key, value in flags.items() if value is not None}
    try:
        file: FileConfig | None = find_file(kw["config_path"], os.environ)
        job = resolve_job(kw["job_name"], file, kw["mongo_db"])
        if flags.pop("batch_size") is not None:
            job = replace(job, batch_size=kw["batch_size"])
        if kw["allow_missing_source"]:
            job = replace(job, allow_missing_source=True)
        settings = resolve_settings(flags, os.environ, file, need_mongo)
    except ConfigError as exc:
        message = str(exc)
        if isinstance(exc, BadValue) and exc.key in given:
            # A flag's name is its key's: connect_timeout_s is --connect-timeout.
            message = f"--{exc.key.removesuffix('_s').replace('_', '-')}: {message}"
        die(message, exc.exit_code, raw, kw["as_json"], kw["job_name"] or BUILTIN_JOB)
    secrets = tuple(dict.fromkeys(raw + settings.secrets))
    buffered = buffered_logs and not sys.stderr.isatty()
    configure_logging(kw["log_level"], kw["log_format"], secrets, buffered=buffered)
    return Context(job, settings, secrets, kw["as_json"])


@contextlib.contextmanager
def progress_display(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    from idsync.cli.progress import RichProgress  # noqa: PLC0415 (rich loads only for terminals)

    with RichProgress() as bar:
        yield bar


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM or SIGINT set the event once (the run stops after its batch); a second one kills."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        stop.set()
        signal.signal(signum, signal.SIG_DFL)
        logging.getLogger("idsync").warning(
            "%s received: stopping after the current batch", signal.Signals(signum).name
        )

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def export_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--metrics-file and --pushgateway, for commands that end with a report."""
    func = click.option(
        "--pushgateway",
        metavar="URL",
        help="Push the run's metrics to this Prometheus Pushgateway.",
    )(func)
    return click.option(
        "--metrics-file",
        metavar="PATH",
        help="Write the run's metrics here (Prometheus text, atomically).",
    )(func)


def publish_metrics(ctx: Context, report: dict[str, Any], command: str, kw: dict[str, Any]) -> None:
    """Export the report's metrics as asked; a failed run keeps the previous success time."""
    if not kw.get("metrics_file") and not kw.get("pushgateway"):
        return
    last = None
    if report["status"] not in SUCCESS:
        with contextlib.suppress(IdsyncError), open_target(ctx.settings, ctx.job) as target:
            target.connect()
            kinds = ("check",) if command == "check" else ("run", "watch")
            found = target.last_success(ctx.job.name, kinds)
            last = found.finished_at.timestamp() if found else None
    from idsync import export  # noqa: PLC0415 (prometheus_client loads only when exporting)

    export.publish(report, command, kw["metrics_file"], kw["pushgateway"], last)


def emit(report: SyncReport, ctx: Context) -> NoReturn:
    text = report.to_json() if ctx.as_json else report.to_text()
    click.echo(redact(text, ctx.secrets))
    logging.shutdown()
    if report.error:
        click.echo(f"idsync: {redact(report.error, ctx.secrets)}", err=True)
    finish(report.exit_code)


def failed_with(report: BaseReport, exc: BaseException) -> None:
    """Fail ``report`` with ``exc`` unless the library already did (an error raised before the
    run began, or around it)."""
    if report.error is None:
        report.fail(as_idsync_error(exc))
