"""`idsync work` and `idsync plan`: a round of `_id` ranges, worked by any number of processes."""

from __future__ import annotations

import click

from idsync.cli.args import CommonArgs, common_options
from idsync.cli.common import Context, failed_with, finish, resolve, say_error, stop_on_signals
from idsync.errors import IdsyncError
from idsync.work import WorkOptions, WorkReport, work

# A claim reads the round's rows in order: beyond some thousands of ranges it costs more than a
# range's work; a range per some thousands of ids is plenty.
MAX_RANGES = 10_000

_EXAMPLES = """\b
Examples:
  idsync work                      # in every process: the first plans, all claim until done
  idsync plan --ranges 64          # a new round of 64 ranges now; workers then take it
"""


def _ranges(function: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--ranges", type=click.IntRange(1, MAX_RANGES), default=16, show_default=True,
        help="Ranges a new round is cut into, by ObjectId creation time (plus one for other _ids).",
    )(function)  # fmt: skip


@click.command(epilog=_EXAMPLES)
@common_options
@_ranges
@click.option(
    "--lease", type=click.IntRange(1, 86_400), default=60, show_default=True, metavar="S",
    help="Seconds a claimed range is held unrenewed: a dead worker's range is redone after it.",
)  # fmt: skip
@click.option("--lock-timeout", type=float, metavar="S", help="Longest wait to plan a round (30).")
@click.option("--retries", type=int, metavar="N", help="New attempts after a transient failure.")
@click.option("--read-batch-size", type=int, metavar="N", help="Ids per read (and insert) (10000).")
@click.option("--socket-timeout", type=float, metavar="S", help="Longest one read may take (300).")
@click.option(
    "--fresh-for", type=click.FloatRange(0, 86_400 * 30), default=900.0, show_default=True,
    metavar="S", help="A round finished but planned less than S ago is done: a late worker ends.",
)  # fmt: skip
def work_command(
    *,
    common: CommonArgs,
    ranges: int,
    lease: int,
    lock_timeout: float | None,
    retries: int | None,
    read_batch_size: int | None,
    socket_timeout: float | None,
    fresh_for: float,
) -> None:
    """Work the job's round of _id ranges with any other workers, until every range is done.

    The same command in every process (a Kubernetes Indexed Job, an Airflow task mapped N
    times): the first to find no unfinished round plans one; each claims ranges from the
    idsync_ranges table in the target's database until none is left; a worker that dies has
    its range redone once its --lease ends. Needs a UNIQUE index on the column. Exit 0 when the
    round is done, 1 on failure, 4 if ids were rejected.
    """
    ctx = resolve(common, {
        "lock_timeout_s": lock_timeout, "retries": retries, "read_batch_size": read_batch_size,
        "socket_timeout_s": socket_timeout,
    })  # fmt: skip
    _finish(ctx, WorkOptions(ranges=ranges, lease_s=lease, fresh_s=fresh_for))


@click.command(name="plan", epilog=_EXAMPLES)
@common_options
@_ranges
@click.option("--lock-timeout", type=float, metavar="S", help="Longest wait for the lock (30).")
def plan_command(*, common: CommonArgs, ranges: int, lock_timeout: float | None) -> None:
    """Plan a new round of _id ranges now, even if one is unfinished; work nothing."""
    ctx = resolve(common, {"lock_timeout_s": lock_timeout})
    _finish(ctx, WorkOptions(ranges=ranges, new_round=True))


def _finish(ctx: Context, options: WorkOptions) -> None:
    report = WorkReport(job=ctx.job.name)
    # A signal stops the worker after its batch; one that comes later, while the report is
    # printed, changes nothing: the report stays the one said (a second signal kills).
    with stop_on_signals() as stop:
        try:
            work(ctx.job, ctx.settings, options, stop, report)
        except (IdsyncError, KeyboardInterrupt) as exc:
            failed_with(report, exc)
        say_error(report.to_json() if ctx.as_json else report.to_text(), report.error, ctx)
        finish(report.exit_code)
