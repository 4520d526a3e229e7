"""`idsync doctor`: check both servers, the table and the data before a job runs."""

from __future__ import annotations

import json

import click

from idsync.cli.args import CommonArgs, common_options
from idsync.cli.common import die, finish, resolve
from idsync.doctor import diagnose
from idsync.errors import IdsyncError
from idsync.urls import redact


@click.command()
@common_options
@click.option(
    "--strict", is_flag=True,
    help="Exit 4 for notes too (an optional feature missing: change streams, the runs history).",
)  # fmt: skip
def doctor(common: CommonArgs, strict: bool) -> None:
    """Check servers, privileges, table, column and ids; exit 0 ok (notes allowed), 4 warnings,
    1 failures."""
    ctx = resolve(common, {})
    try:
        report = diagnose(ctx.job, ctx.settings)
    except IdsyncError as exc:  # a URI only the driver can judge is refused before any check
        die(str(exc), exc.exit_code, ctx.secrets, ctx.as_json, ctx.job.name)
    report.strict = strict
    if ctx.as_json:
        click.echo(redact(json.dumps(report.to_dict()), ctx.secrets))
    else:
        for finding in report.findings:
            line = f"{finding.level:<5} {finding.check:<15} {finding.detail}"
            click.echo(redact(line, ctx.secrets))
            if finding.fix and finding.level != "ok":
                click.echo(f"{'':<21} → {finding.fix}")
    finish(report.exit_code)
