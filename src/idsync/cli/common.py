"""What every command shares: options, resolving the configuration once, printing, exiting."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import click

from idsync.checks import BadValue
from idsync.cli.args import CommonArgs, ExportArgs
from idsync.cli.observability import configure_logging, error_logged
from idsync.config import (
    BUILTIN_JOB,
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
from idsync.urls import raw_secrets, redact

log = logging.getLogger("idsync")


@dataclass(frozen=True)
class Context:
    """What every command resolves first, once."""

    job: Job
    settings: Settings
    secrets: tuple[str, ...]
    as_json: bool


def finish(code: int) -> NoReturn:
    """End the command with ``code`` (``main()`` ends the process)."""
    raise click.exceptions.Exit(code)


def die(message: str, code: int, secrets: tuple[str, ...], as_json: bool, job: str) -> NoReturn:
    message = redact(message, secrets)
    if as_json:
        status = "refused" if code == GuardError.exit_code else "failed"
        click.echo(json.dumps({"job": job, "status": status, "error": message, "exit_code": code}))
    click.echo(f"idsync: {message}", err=True)
    finish(code)


def fail(ctx: Context, exc: IdsyncError) -> NoReturn:
    """End a command that failed after :func:`resolve`: the JSON object with ``--json``, and
    the reason once on stderr, through the log (in its format) unless the log said it."""
    message = redact(str(exc), ctx.secrets)
    if ctx.as_json:
        status = "refused" if exc.exit_code == GuardError.exit_code else "failed"
        click.echo(json.dumps(
            {"job": ctx.job.name, "status": status, "error": message, "exit_code": exc.exit_code}
        ))  # fmt: skip
    if not error_logged():
        name = ctx.job.name
        log.error("[%s] error: %s", name, message, extra={"job": name, "event": "error"})
    finish(exc.exit_code)


def resolve(
    common: CommonArgs,
    extra_settings: dict[str, Any],
    *,
    batch_size: int | None = None,
    pushgateway: str | None = None,
    need_mongo: bool = True,
    buffered_logs: bool = True,
) -> Context:
    """Configuration and logging, once. A daemon passes ``buffered_logs=False``: its lines
    must go out as they happen, not when the next line comes."""
    raw = raw_secrets(
        common.mongo_uri,
        common.mysql_url,
        common.target_url,
        os.environ.get("IDSYNC_MONGO_URI"),
        os.environ.get("IDSYNC_MYSQL_URL"),
        os.environ.get("IDSYNC_TARGET_URL"),
        pushgateway,
    )
    flags = {
        "mongo_uri": common.mongo_uri,
        "mysql_url": common.mysql_url,
        "target_url": common.target_url,
        "connect_timeout_s": common.connect_timeout,
        "batch_size": batch_size,
        **extra_settings,
    }
    given = {key for key, value in flags.items() if value is not None}
    if common.orphan_action is not None:
        given.add("orphan_action")
    try:
        file: FileConfig | None = find_file(common.config_path, os.environ)
        job = resolve_job(common.job_name, file, common.mongo_db)
        flags.pop("batch_size")
        if batch_size is not None:
            job = replace(job, batch_size=batch_size)
        if common.allow_missing_source:
            job = replace(job, allow_missing_source=True)
        if common.orphan_action is not None:
            job = replace(job, orphan_action=common.orphan_action)
        settings = resolve_settings(flags, os.environ, file, need_mongo)
    except ConfigError as exc:
        message = str(exc)
        if isinstance(exc, BadValue) and exc.key in given:
            # A flag's name is its key's, without its unit: connect_timeout_s is
            # --connect-timeout, memory_budget_mb --memory-budget.
            flag = exc.key.removesuffix("_s").removesuffix("_mb").replace("_", "-")
            message = f"--{flag}: {message}"
        die(message, exc.exit_code, raw, common.as_json, common.job_name or BUILTIN_JOB)
    secrets = tuple(dict.fromkeys(raw + settings.secrets))
    buffered = buffered_logs and not sys.stderr.isatty()
    configure_logging(common.log_level, common.log_format, secrets, buffered=buffered)
    return Context(job, settings, secrets, common.as_json)


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
        log.warning("%s received: stopping after the current batch", signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def printing() -> Iterator[None]:
    """While a report is printed: a signal ends the process at once (128 + its number), so
    that nothing is appended to a report half written into a pipe no one reads."""

    def leave(signum: int, _frame: object) -> None:
        os._exit(128 + signum)

    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def publish_metrics(ctx: Context, report: dict[str, Any], command: str, export: ExportArgs) -> None:
    """Export the report's metrics as asked; a failed run keeps the previous success time."""
    if not export.wanted:
        return
    last = None
    if report["status"] not in SUCCESS:
        with contextlib.suppress(IdsyncError), open_target(ctx.settings, ctx.job) as target:
            target.connect()
            kinds = ("check",) if command == "check" else ("run", "watch", "work")
            found = target.last_success(ctx.job.name, kinds)
            last = found.finished_at.timestamp() if found else None
    from idsync import export as exporting  # noqa: PLC0415 (prometheus_client loads only then)

    exporting.publish(report, command, export.metrics_file, export.pushgateway, last)


def emit(report: SyncReport, ctx: Context) -> NoReturn:
    text = report.to_json() if ctx.as_json else report.to_text()
    say_error(text, report.error, ctx)
    finish(report.exit_code)


def say_error(text: str, error: str | None, ctx: Context) -> None:
    """Print a report, and on stderr its failure unless the log has said it already: once per
    channel, whatever the log's format."""
    said = error_logged()
    click.echo(redact(text, ctx.secrets))
    logging.shutdown()
    if error and not said:
        click.echo(f"idsync: {redact(error, ctx.secrets)}", err=True)


def failed_with(report: BaseReport, exc: BaseException) -> None:
    """Fail ``report`` with ``exc`` unless the library already did (an error raised before the
    run began, or around it)."""
    if report.error is None:
        report.fail(as_idsync_error(exc))
