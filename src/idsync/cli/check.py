"""`idsync check`: compare both sides without writing; exit 0 in sync, 4 on drift.

Also what `idsync run --check-after` prints: :func:`emit_with_check`.
"""

from __future__ import annotations

import json
import threading
from typing import NoReturn

import click

from idsync.check.checker import CheckOptions, check
from idsync.check.report import CheckReport
from idsync.cli.args import (
    CommonArgs,
    ExportArgs,
    PlanArgs,
    common_options,
    exact_check,
    export_options,
    plan_options,
)
from idsync.cli.common import (
    Context,
    failed_with,
    finish,
    publish_metrics,
    resolve,
    say_error,
    stop_on_signals,
)
from idsync.config import Job, Settings
from idsync.errors import IdsyncError
from idsync.run.report import SyncReport


@click.command(name="check")
@common_options
@click.option(
    "--exact/--fast",
    default=None,
    envvar="IDSYNC_CHECK_EXACT",
    show_default=True,
    help="Compare every id (--exact), or per range of ObjectIds a count and two checksums of"
    " the texts (MySQL sums its rows itself; MongoDB's keys are read once and summed here),"
    " reading MySQL's ids only where they differ (--fast, the default); both prove the same."
    " Env IDSYNC_CHECK_EXACT=1 makes --exact the default for scheduled runs.",
)
@click.option("--read-batch-size", type=int, metavar="N", help="Ids per read round trip.")
@click.option("--socket-timeout", type=float, metavar="S", help="Longest one read may take (300).")
@click.option("--retries", type=int, metavar="N", help="New attempts after a transient failure.")
@plan_options
@export_options
def check_command(
    *,
    common: CommonArgs,
    export: ExportArgs,
    exact: bool | None,
    read_batch_size: int | None,
    socket_timeout: float | None,
    retries: int | None,
    plans: PlanArgs,
) -> None:
    """Prove the target holds exactly the source's ids, or say where it does not.

    Reports ids missing in MySQL, rows with no MongoDB document (orphans, never deleted), ids
    that cannot be stored and duplicated rows. Exit 0 only when proven: --exact compared every
    id; --fast found every range of ObjectIds with the same count and checksums on both sides
    (a difference could hide only behind a collision of two 26-bit checksums) and compared every
    other id. Exit 4 on drift, 1 on failure, 2 on a usage error.
    """
    ctx = resolve(common, {
        "read_batch_size": read_batch_size, "socket_timeout_s": socket_timeout, "retries": retries,
        **plans.settings(),
    }, pushgateway=export.pushgateway)  # fmt: skip
    report = CheckReport(job=ctx.job.name)
    options = CheckOptions(check_exact=exact_check(exact, ctx.settings.check_exact))
    # A signal stops the check at its next read; once it has ended, the report is still
    # recorded, exported and printed whole (a second signal kills).
    with stop_on_signals() as stop:
        try:
            check(ctx.job, ctx.settings, options, report, stop)
        except (IdsyncError, KeyboardInterrupt) as exc:
            failed_with(report, exc)  # the check did not prove anything
        publish_metrics(ctx, report.to_dict(), "check", export)
        say_error(report.to_json() if ctx.as_json else report.to_text(), report.error, ctx)
    finish(report.exit_code)


def emit_with_check(
    synced: SyncReport, job: Job, ctx: Context, *, exact: bool, stop: threading.Event
) -> NoReturn:
    """Print a sync's report with the check made after it, and exit with one code.

    JSON: the sync's object with the check's under ``"check"`` (null when the sync did not
    finish). Exit: the sync's failure first, then 4 if drift remains, else the sync's code.
    """
    checked = check_after(job, ctx.settings, synced, CheckOptions(check_exact=exact), stop)
    if checked is not None and checked.orphans:
        synced.warnings.append(
            f"{checked.orphans:,} orphan{'s' if checked.orphans != 1 else ''} (rows no source id"
            " has): not a run's to fix, only a mirror would delete them; `idsync check` exits 4"
            " for them"
        )
    code = exit_code_after(synced, checked)
    if ctx.as_json:
        data = synced.to_dict()
        data["check"] = checked.to_dict() if checked else None
        data["exit_code"] = code  # the process's, with the check's outcome in it
        text = json.dumps(data, ensure_ascii=False)
    else:
        text = synced.to_text() + (f"\ncheck: {checked.to_text()}" if checked else "")
    error = synced.error or (checked.error if checked else None)
    say_error(text, error, ctx)
    finish(code)


def check_after(
    job: Job,
    settings: Settings,
    synced: SyncReport,
    options: CheckOptions | None = None,
    stop: threading.Event | None = None,
) -> CheckReport | None:
    """The check of ``idsync run --check-after``: None when the sync did not finish (its own
    report says why); else the check's report, whose failure is reported, not raised."""
    if synced.error is not None:
        return None
    report = CheckReport(job=job.name)
    try:
        check(job, settings, options, report, stop)
    except (IdsyncError, KeyboardInterrupt) as exc:  # a signal fails the check, not the run
        failed_with(report, exc)
    return report


def exit_code_after(synced: SyncReport, checked: CheckReport | None) -> int:
    """One exit code for a sync and the check after it: the sync's failure first, then the
    check's failure, then 4 if what a run is for is not done (ids still missing, rows twice),
    else the sync's code. Orphans alone leave the sync's code: no run removes them."""
    if synced.exit_code not in (0, 4) or checked is None:
        return synced.exit_code
    if checked.error is not None:
        return checked.exit_code
    undone = checked.missing or checked.duplicate_rows or checked.rejected
    return 4 if undone else synced.exit_code
