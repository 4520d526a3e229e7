"""`idsync run`: one pass of a job."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import click

from idsync.cli.common import common_options, emit, progress_display, resolve
from idsync.config import RunOptions
from idsync.errors import IdsyncError
from idsync.report import SyncReport
from idsync.source import ScanOrder
from idsync.sync import sync


@click.command()
@common_options
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
    ctx = resolve(
        kw, {"read_batch_size": kw["read_batch_size"], "lock_timeout_s": kw["lock_timeout"]}
    )
    job = replace(ctx.job, batch_size=kw["batch_size"]) if kw["batch_size"] else ctx.job
    options = RunOptions(
        dry_run=kw["dry_run"], allow_empty_source=kw["allow_empty_source"], log_ids=kw["log_ids"]
    )
    order = None if kw["scan_order"] == "auto" else ScanOrder(kw["scan_order"])
    show_bar = sys.stderr.isatty() and not kw["quiet"] and not ctx.as_json
    try:
        with progress_display(show_bar) as bar:
            report = sync(job, ctx.settings, options, progress=bar, scan_order=order)
    except IdsyncError as exc:
        report = getattr(exc, "report", None) or SyncReport(job=job.name, dry_run=options.dry_run)
    emit(report, ctx)
