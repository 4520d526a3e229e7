"""The `idsync` command: thin click commands over the library; errors become exit codes.

Exit codes: 0 ok, 1 failed, 2 usage or config error, 3 refused by a safety guard,
4 finished but some ids rejected. Each command lives in its own module and is added here.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import json
import logging
import os
import signal
import sys
from typing import NoReturn

import click

from idsync import entry
from idsync.config import BUILTIN_JOB
from idsync.urls import raw_secrets, redact
from idsync.version import __version__, versions

# Each command's module, imported only when that command runs (or help lists them all): a cron
# run of `idsync run` should not pay for loading the watcher, the checker and the metrics code.
COMMANDS = {
    "run": ("idsync.cli.run", "run"),
    "watch": ("idsync.cli.watch", "watch"),
    "check": ("idsync.cli.check", "check_command"),
    "init": ("idsync.cli.admin", "init"),
    "jobs": ("idsync.cli.admin", "jobs"),
    "status": ("idsync.cli.status", "status"),
    "doctor": ("idsync.cli.doctor", "doctor"),
    "work": ("idsync.cli.work", "work_command"),
    "plan": ("idsync.cli.work", "plan_command"),
    "completion": ("idsync.cli.admin", "completion"),
}


class Interrupted(Exception):
    """A signal ended a command that takes no stop: said by ``main()``, not by click (which
    would print a bare newline and "Aborted!")."""


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Signalled as exc:
            raise Interrupted(str(exc)) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, message=f"idsync %(version)s\n{versions()}", prog_name="idsync")
def cli() -> None:
    """Keep SQL reference tables of MongoDB ids complete, fast, and provably so."""


def main() -> None:
    """Console-script entry point."""
    # A sync allocates an object per id (driver documents, rows) while holding sets of
    # millions: the collector's default thresholds spend seconds walking them and the modules
    # loaded at start-up. Collections are rarer and skip what start-up created; reference
    # counting still frees everything, so memory does not grow.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # One series per counter, not two: `_created` timestamps say nothing a dashboard uses.
    os.environ.setdefault("PROMETHEUS_DISABLE_CREATED_SERIES", "true")
    secrets = raw_secrets(
        os.environ.get("IDSYNC_MONGO_URI"),
        os.environ.get("IDSYNC_MYSQL_URL"),
        os.environ.get("IDSYNC_TARGET_URL"),
        *sys.argv,
    )
    interrupt_on_signals()
    if entry.held:  # before the command could take it
        message = f"interrupted ({signal.Signals(entry.held[0]).name}) before the start"
        _failed_json(message, 1)
        click.echo(f"idsync: {message}", err=True)
        _leave(1)
    try:
        code = cli.main(prog_name="idsync", standalone_mode=False)
    except click.ClickException as exc:  # a flag click itself refused: a usage error
        _failed_json(redact(exc.format_message(), secrets), exc.exit_code)
        shown = io.StringIO()
        exc.show(file=shown)  # click quotes the refused argument: a URL's password, maybe
        click.echo(redact(shown.getvalue(), secrets), err=True, nl=False)
        code = exc.exit_code
    except (Interrupted, click.exceptions.Abort) as exc:  # a signal no command took as a stop
        cause = exc if isinstance(exc, Interrupted) else exc.__cause__ or exc.__context__
        message = f"interrupted ({cause or 'SIGINT'}) before the end"
        _failed_json(message, 1)
        _say(message)
        code = 1
    except Exception as exc:  # a bug: say so in one line, never with a password in it
        message = f"internal error: {type(exc).__name__}: {redact(str(exc), secrets)}"
        _failed_json(message, 1)
        click.echo(f"idsync: {message}", err=True)
        code = 1
    _leave(code if isinstance(code, int) else 0)


class Signalled(KeyboardInterrupt):
    """SIGTERM (or SIGINT) where a command takes no stop: unwinds like Ctrl-C, its text the
    signal's name, so that a report says which came."""


def interrupt_on_signals() -> None:
    """Make SIGTERM unwind the command like Ctrl-C: a report, a history row, exit 1; never a
    silent death. Commands that stop cleanly (a run after its batch) take the signals over
    meanwhile. A signal the parent made us ignore stays ignored."""

    def interrupt(signum: int, _frame: object) -> None:
        raise Signalled(signal.Signals(signum).name)

    term, intr = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    if term is signal.SIG_DFL or entry.holding(term):
        signal.signal(signal.SIGTERM, interrupt)
    if intr is signal.default_int_handler or entry.holding(intr):
        signal.signal(signal.SIGINT, interrupt)


def _say(message: str) -> None:
    """A failure on stderr, once: through the log when a command configured it (its format,
    JSON maybe), else as a plain line."""
    logger, job = logging.getLogger("idsync"), _job_name(sys.argv)
    if logger.handlers:
        logger.error("[%s] error: %s", job, message, extra={"job": job, "event": "error"})
    else:
        click.echo(f"idsync: {message}", err=True)


def _leave(code: int) -> NoReturn:
    """Flush what was printed and logged, then end the process with ``code``.

    Not ``sys.exit``: at interpreter exit pymongo joins its monitor threads, which sleep in
    0.5 s steps, so every command would end half a second late. By the time a command
    returns, its clients are closed and its output flushed; nothing is left to wait for.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):  # the outcome is printed: nothing to stop
        signal.signal(signum, signal.SIG_IGN)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _failed_json(message: str, code: int) -> None:
    """With --json, the one object a caller parses, also when no command got to print it.

    Nothing reached stdout yet: every command prints its report last, then exits."""
    if "--json" in sys.argv[1:]:
        failed = {"job": _job_name(sys.argv), "status": "failed", "error": message}
        click.echo(json.dumps({**failed, "exit_code": code}))


def _job_name(argv: list[str]) -> str:
    for at, arg in enumerate(argv):
        if arg.startswith("--job="):
            return arg.removeprefix("--job=")
        if arg == "--job" and at + 1 < len(argv):
            return argv[at + 1]
    return BUILTIN_JOB
