"""`idsync run`: one pass of a job."""

from __future__ import annotations

import contextlib
import sys

import click

from idsync.cli.args import (
    CommonArgs,
    ExportArgs,
    MirrorArgs,
    PassArgs,
    PlanArgs,
    common_options,
    count_or_share,
    exact_check,
    export_options,
    mirror_options,
    pass_options,
    plan_options,
)
from idsync.cli.common import (
    emit,
    fail,
    failed_with,
    progress_display,
    publish_metrics,
    resolve,
    stop_on_signals,
)
from idsync.cli.listing import MissingFile
from idsync.config import RunOptions
from idsync.errors import ConfigError, IdsyncError
from idsync.mongo.source import ScanOrder
from idsync.run.report import SyncReport
from idsync.run.sync import sync

_EXAMPLES = """\b
Examples:
  idsync run --dry-run --json            # what would be inserted, nothing written
  idsync run --delete-orphans --dry-run  # and which rows of deleted documents would go
  IDSYNC_TARGET_URL=postgresql://u:p@db/maas idsync run --max-inserts 5% --metrics-file x.prom
"""


@click.command(epilog=_EXAMPLES)
@common_options
@click.option("--dry-run", is_flag=True, help="Compute and report; write nothing.")
@pass_options
@click.option(
    "--scan-order",
    type=click.Choice(["auto", *[o.value for o in ScanOrder]]),
    default="auto",
    show_default=True,
    help="Walk the source by its _id index, or in natural order (auto: by server).",
)
@click.option(
    "--max-inserts",
    metavar="N|P%",
    help="Refuse (exit 3, insert nothing) if more than N ids, or P% of the target, are missing.",
)
@mirror_options
@click.option("--force", is_flag=True, help="Insert and delete even beyond the limits.")
@click.option("--retries", type=int, metavar="N", help="New passes after a transient failure (2).")
@click.option("--socket-timeout", type=float, metavar="S", help="Longest one read may take (300).")
@click.option("--no-history", is_flag=True, help="Do not append the run to idsync_runs.")
@click.option(
    "--check-after", is_flag=True, help="Then check that both sides agree (exit 4 if not)."
)
@click.option(
    "--exact/--fast",
    default=None,
    envvar="IDSYNC_CHECK_EXACT",
    help="With --check-after: compare every id, or a count and checksums per range of"
    " ObjectIds first (both prove the same; --fast reads fewer ids).",
)
@click.option(
    "--list-missing", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
    help="Write every id the run stores to FILE, one per line (a pipe: as each batch commits;"
    " a file: in place when the run ends); with --dry-run, every id it would insert.",
)  # fmt: skip
@plan_options
@export_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(
    *,
    common: CommonArgs,
    passes: PassArgs,
    export: ExportArgs,
    dry_run: bool,
    scan_order: str,
    max_inserts: str | None,
    mirror: MirrorArgs,
    force: bool,
    retries: int | None,
    socket_timeout: float | None,
    no_history: bool,
    check_after: bool,
    exact: bool | None,
    list_missing: str | None,
    plans: PlanArgs,
    quiet: bool,
) -> None:
    """Insert every id of the source that the target lacks, in committed batches."""
    ctx = resolve(common, {
        "read_batch_size": passes.read_batch_size, "lock_timeout_s": passes.lock_timeout,
        "retries": retries, "socket_timeout_s": socket_timeout,
        **plans.settings(),
    }, batch_size=passes.batch_size, pushgateway=export.pushgateway)  # fmt: skip
    job = ctx.job
    count, share = count_or_share(max_inserts, "--max-inserts")
    deletes, deletes_share = mirror.limits()
    options = RunOptions(
        dry_run=dry_run, allow_empty_source=passes.allow_empty_source, log_ids=passes.log_ids,
        max_inserts=count, max_inserts_fraction=share, force=force, record_history=not no_history,
        delete_orphans=mirror.delete_orphans, max_deletes=deletes,
        max_deletes_fraction=deletes_share, allow_cascade=mirror.allow_cascade,
    )  # fmt: skip
    order = None if scan_order == "auto" else ScanOrder(scan_order)
    # A bar's redraws would break JSON log lines apart: JSON logs are for machines anyway.
    show_bar = sys.stderr.isatty() and not (quiet or ctx.as_json or common.log_format == "json")
    report = SyncReport(job=job.name, dry_run=options.dry_run)
    try:  # before anything is read or written
        missing = MissingFile(list_missing) if list_missing else None
    except ConfigError as exc:
        fail(ctx, exc)
    # A signal stops the run after its batch (and a check after it at its next read); the
    # report is then still exported and printed whole (a second signal kills).
    with stop_on_signals() as stop:
        try:
            with progress_display(show_bar) as bar:
                sync(job, ctx.settings, options, progress=bar, scan_order=order, stop=stop,
                     report=report, missing=missing)  # fmt: skip
            if missing is not None:
                missing.close()
        except (IdsyncError, KeyboardInterrupt) as exc:
            if missing is not None:
                with contextlib.suppress(IdsyncError):  # the run's own failure comes first
                    missing.close()
            failed_with(report, exc)
        publish_metrics(ctx, report.to_dict(), "run", export)
        if check_after:
            from idsync.cli.check import emit_with_check  # noqa: PLC0415 (loads when asked)

            exactly = exact_check(exact, ctx.settings.check_exact)
            emit_with_check(report, job, ctx, exact=exactly, stop=stop)
        emit(report, ctx)
