"""The `idsync` command: thin click commands over the library; errors become exit codes.

Exit codes: 0 ok, 1 failed, 2 usage or config error, 3 refused by a safety guard,
4 finished but some ids rejected. Each command lives in its own module and is added here.
"""

from __future__ import annotations

import os
import sys

import click

from idsync import __version__
from idsync.cli.admin import init, jobs
from idsync.cli.check import check_command
from idsync.cli.common import raw_secrets
from idsync.cli.doctor import doctor
from idsync.cli.run import run
from idsync.cli.status import status
from idsync.cli.watch import watch
from idsync.observability import redact


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="idsync")
def cli() -> None:
    """Keep SQL reference tables of MongoDB ids complete, fast, and provably so."""


for command in (run, watch, check_command, init, jobs, status, doctor):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="idsync")
    except Exception as exc:  # a bug: say so in one line, never with a password in it
        secrets = raw_secrets(
            os.environ.get("IDSYNC_MONGO_URI"), os.environ.get("IDSYNC_MYSQL_URL"), *sys.argv
        )
        click.echo(
            f"idsync: internal error: {type(exc).__name__}: {redact(str(exc), secrets)}", err=True
        )
        sys.exit(1)
