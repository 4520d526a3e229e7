"""`idsync run`: one pass of a job."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

import click

from idsync.cli.args import (
    CommonArgs,
    ExportArgs,
    PassArgs,
    PlanArgs,
    common_options,
    exact_check,
    export_options,
    pass_options,
    plan_options,
)
from idsync.cli.common import (
    emit,
    failed_with,
    progress_display,
    publish_metrics,
    resolve,
    stop_on_signals,
)
from idsync.config import RunOptions
from idsync.errors import ConfigError, IdsyncError, TerminalError
from idsync.mongo.source import ScanOrder
from idsync.run.report import SyncReport
from idsync.run.sync import sync

_EXAMPLES = """\b
Examples:
  idsync run --dry-run --json            # what would be inserted, nothing written
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
@click.option("--force", is_flag=True, help="Insert even beyond --max-inserts.")
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
    help="Write every id the run inserts to FILE, one per line, as each batch commits (with"
    " --dry-run: every id it would insert).",
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
    count, share = _max_inserts(max_inserts)
    options = RunOptions(
        dry_run=dry_run, allow_empty_source=passes.allow_empty_source, log_ids=passes.log_ids,
        max_inserts=count, max_inserts_fraction=share, force=force, record_history=not no_history,
    )  # fmt: skip
    order = None if scan_order == "auto" else ScanOrder(scan_order)
    # A bar's redraws would break JSON log lines apart: JSON logs are for machines anyway.
    show_bar = sys.stderr.isatty() and not (quiet or ctx.as_json or common.log_format == "json")
    report = SyncReport(job=job.name, dry_run=options.dry_run)
    try:
        with (
            progress_display(show_bar) as bar,
            stop_on_signals() as stop,
            _listing(list_missing) as missing,
        ):
            sync(job, ctx.settings, options, progress=bar, scan_order=order, stop=stop,
                 report=report, missing=missing)  # fmt: skip
    except (IdsyncError, KeyboardInterrupt) as exc:
        failed_with(report, exc)
    publish_metrics(ctx, report.to_dict(), "run", export)
    if check_after:
        from idsync.cli.check import emit_with_check  # noqa: PLC0415 (loads only when asked)

        emit_with_check(report, job, ctx, exact=exact_check(exact, ctx.settings.check_exact))
    emit(report, ctx)


class _MissingFile:
    """`--list-missing`: the ids in a file, one per line, flushed batch by batch so that a
    full disk or a closed pipe stops the run at once, with the file named."""

    def __init__(self, out: TextIO, path: str) -> None:
        self.out, self.path = out, path

    def begin(self) -> None:
        # A dry run's retried pass lists again what the failed one listed. A pipe cannot be
        # taken back: there an id may come twice after a retry.
        if self.out.seekable():
            self._do(lambda: (self.out.seek(0), self.out.truncate()))

    def add(self, texts: list[str]) -> None:
        self._do(lambda: (self.out.writelines(f"{text}\n" for text in texts), self.out.flush()))

    def _do(self, step: Callable[[], object]) -> None:
        try:
            step()
        except OSError as exc:
            raise TerminalError(f"--list-missing {self.path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _listing(path: str | None) -> Iterator[_MissingFile | None]:
    if path is None:
        yield None
        return
    if path == "-":  # stdout carries the report
        raise ConfigError("--list-missing -: give a file (a named pipe works too)")
    try:
        out = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise ConfigError(f"--list-missing {path}: {exc.strerror or exc}") from None
    try:
        yield _MissingFile(out, path)
    finally:
        with contextlib.suppress(OSError):  # each batch was flushed: nothing is left to lose
            out.close()


def _max_inserts(text: str | None) -> tuple[int | None, float | None]:
    """``"5000"`` is a count, ``"10%"`` a share of the target."""
    if text is None:
        return None, None
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if 0 <= share < math.inf:
                return None, share
        elif int(text) >= 0:
            return int(text), None
    except ValueError:
        pass
    raise click.BadParameter(
        f"{text!r}: a count (5000) or a share of the target (10%)", param_hint="--max-inserts"
    )
