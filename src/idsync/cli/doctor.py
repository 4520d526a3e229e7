"""`idsync doctor`: check both servers, the table and the data before a job runs."""

from __future__ import annotations

import json
import logging

import click

from idsync.cli.args import CommonArgs, common_options
from idsync.cli.common import Context, fail, finish, printing, resolve
from idsync.doctor import DoctorReport, Level, diagnose
from idsync.errors import IdsyncError
from idsync.urls import redact

log = logging.getLogger("idsync")


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
        fail(ctx, exc)
    report.strict = strict
    with printing():
        _show(report, ctx)
    failures = [f for f in report.findings if f.level is Level.FAIL]
    if failures:  # stdout may go to a file: say on stderr that it failed, and the first why
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        log.error(
            "[%s] doctor: %s: %s%s", ctx.job.name, failures[0].check, redact(failures[0].detail,
            ctx.secrets), more, extra={"job": ctx.job.name, "event": "error"},
        )  # fmt: skip
    finish(report.exit_code)


def _show(report: DoctorReport, ctx: Context) -> None:
    if ctx.as_json:
        click.echo(redact(json.dumps(report.to_dict()), ctx.secrets))
        return
    for finding in report.findings:
        line = f"{finding.level:<5} {finding.check:<15} {finding.detail}"
        click.echo(redact(line, ctx.secrets))
        if finding.fix and finding.level != "ok":
            click.echo(f"{'':<21} → {finding.fix}")
