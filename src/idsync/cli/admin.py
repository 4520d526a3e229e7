"""`idsync init` and `idsync jobs`: the target table and the list of jobs."""

from __future__ import annotations

import json
import os

import click

from idsync.cli.args import CommonArgs, common_options
from idsync.cli.common import die, fail, resolve
from idsync.config import BUILTIN_JOB, Job, find_file
from idsync.errors import ConfigError, IdsyncError
from idsync.ledger import RANGES_TABLE
from idsync.target import RUNS_TABLE, STATE_TABLE
from idsync.targets import open_target


@click.command()
@common_options
def init(common: CommonArgs) -> None:
    """Create the job's target table and idsync_runs if missing (never alters a table)."""
    ctx = resolve(common, {}, need_mongo=False)
    job = ctx.job
    try:
        with open_target(ctx.settings, job) as target:
            target.connect()
            created = target.create_table()
            column = target.inspect()
            made = target.create_owned_tables()
            if target.ledger("").create():  # the rounds of `idsync work`
                made = (*made, RANGES_TABLE)
            where = target.shown_table
    except IdsyncError as exc:
        fail(ctx, exc)
    result = {
        "job": job.name,
        "status": "ok",
        "table": where,
        "created": created,
        "column": job.column,
        "collation": column.collation,
        "unique_index": column.unique,
        "history_table": RUNS_TABLE,
        "history_created": RUNS_TABLE in made,
        "state_created": STATE_TABLE in made,
        "ranges_created": RANGES_TABLE in made,
    }
    if ctx.as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(
            f"{where}: {'created' if created else 'exists, left as it is'} "
            f"({job.column}, collation {column.collation}, "
            f"{'unique' if column.unique else 'NOT unique'})"
        )
        for name in (RUNS_TABLE, STATE_TABLE, RANGES_TABLE):
            click.echo(f"{name}: {'created' if name in made else 'exists'}")


@click.command()
@click.option("--config", "config_path", metavar="PATH", help="TOML config file.")
def jobs(config_path: str | None) -> None:
    """List the jobs: the built-in one and those in the config file."""
    try:
        file = find_file(config_path, os.environ)
    except ConfigError as exc:
        die(str(exc), exc.exit_code, (), False, BUILTIN_JOB)
    known = dict(file.jobs) if file else {}
    known.setdefault(BUILTIN_JOB, Job())
    for job in known.values():
        click.echo(
            f"{job.name}: {job.collection}.{job.field} -> {job.table}.{job.column} "
            f"(batch {job.batch_size})"
        )


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell's completion script: `eval "$(idsync completion bash)"` in ~/.bashrc."""
    from click.shell_completion import get_completion_class  # noqa: PLC0415 (only here)

    from idsync.cli import cli  # noqa: PLC0415 (the group this module is part of)

    made = get_completion_class(shell)
    assert made is not None  # click has all three
    click.echo(made(cli, {}, "idsync", "_IDSYNC_COMPLETE").source())
