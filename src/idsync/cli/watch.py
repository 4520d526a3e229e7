"""`idsync watch`: a full pass, then follow new ids as they come, until SIGTERM or SIGINT."""

from __future__ import annotations

import contextlib
import json
import logging

import click

from idsync.checks import parse_duration
from idsync.cli.args import (
    CommonArgs,
    MirrorArgs,
    PassArgs,
    common_options,
    mirror_options,
    pass_options,
)
from idsync.cli.common import Context, fail, finish, resolve, stop_on_signals
from idsync.config import RunOptions
from idsync.errors import ConfigError, IdsyncError
from idsync.metrics import Metrics
from idsync.urls import redact
from idsync.watch.health import Health, HealthServer
from idsync.watch.options import WatchMode, WatchOptions
from idsync.watch.watcher import WatchSummary
from idsync.watch.watcher import watch as follow

log = logging.getLogger("idsync")


@click.command()
@common_options
@click.option(
    "--mode",
    type=click.Choice([m.value for m in WatchMode]),
    default=WatchMode.AUTO.value,
    show_default=True,
    help="Change streams, polling, or change streams where the server has them.",
)
@click.option("--poll-interval", type=float, metavar="S", help="Seconds between polls (1).")
@click.option(
    "--poll-window", type=float, metavar="S", help="How far back each poll looks again (60)."
)
@click.option(
    "--reconcile-every",
    metavar="DURATION",
    default="1h",
    show_default=True,
    help="A full pass this often (90s, 30m, 1h).",
)
@click.option(
    "--skip-initial-pass",
    is_flag=True,
    help="Resume from the checkpoint (or start from now) without a first full pass.",
)
@click.option(
    "--max-batch-wait", type=float, metavar="S", help="Longest an id waits for its batch (0.2)."
)
@click.option("--http", metavar="HOST:PORT", help="Serve /healthz and /metrics (off by default).")
@click.option(
    "--stuck-after", type=float, metavar="S", help="/healthz says 503 after this long stuck (60)."
)
@click.option(
    "--backoff-max", type=float, metavar="S", help="Longest pause between reconnections (30)."
)
@click.option(
    "--socket-timeout", type=float, metavar="S",
    help="Longest one read may take (300): how soon a link gone silent is given up and reopened.",
)  # fmt: skip
@pass_options
@mirror_options
def watch(
    *,
    common: CommonArgs,
    passes: PassArgs,
    mirror: MirrorArgs,
    mode: str,
    poll_interval: float | None,
    poll_window: float | None,
    reconcile_every: str,
    skip_initial_pass: bool,
    max_batch_wait: float | None,
    http: str | None,
    stuck_after: float | None,
    backoff_max: float | None,
    socket_timeout: float | None,
) -> None:
    """Keep the target complete continuously: a full pass, then every new id within a second."""
    extra = {
        "read_batch_size": passes.read_batch_size, "lock_timeout_s": passes.lock_timeout,
        "socket_timeout_s": socket_timeout,
    }  # fmt: skip
    ctx = resolve(common, extra, batch_size=passes.batch_size, buffered_logs=False)
    job = ctx.job
    flags = {
        "poll_interval_s": poll_interval, "poll_window_s": poll_window,
        "max_batch_wait_s": max_batch_wait, "stuck_after_s": stuck_after,
        "backoff_max_s": backoff_max,
    }  # fmt: skip
    try:
        options = _options(WatchMode(mode), flags, reconcile_every, skip_initial_pass, http)
    except ConfigError as exc:
        fail(ctx, exc)
    deletes, deletes_share = mirror.limits()
    run_options = RunOptions(
        allow_empty_source=passes.allow_empty_source, log_ids=passes.log_ids,
        delete_orphans=mirror.delete_orphans, max_deletes=deletes,
        max_deletes_fraction=deletes_share, allow_cascade=mirror.allow_cascade,
    )  # fmt: skip
    metrics, health = Metrics(job.name), Health(options.stuck_after_s, secrets=ctx.secrets)
    try:
        with contextlib.ExitStack() as stack:
            stop = stack.enter_context(stop_on_signals())
            if options.http_address is not None:
                server = stack.enter_context(HealthServer(options.http_address, health, metrics))
                host, port = server.address
                log.info("[%s] serving http://%s:%d/healthz and /metrics", job.name, host, port)
            summary = follow(
                job,
                ctx.settings,
                options,
                stop,
                run_options=run_options,
                metrics=metrics,
                health=health,
            )
    except IdsyncError as exc:
        fail(ctx, exc)
    _emit(summary, ctx)


def _options(
    mode: WatchMode,
    flags: dict[str, float | None],
    reconcile_every: str,
    skip_initial_pass: bool,
    http: str | None,
) -> WatchOptions:
    given = {name: value for name, value in flags.items() if value is not None}
    if "poll_interval_s" in given and "stuck_after_s" not in given:
        # Slow polls are progress too: never call a watcher stuck between two of them.
        given["stuck_after_s"] = max(WatchOptions.stuck_after_s, 3 * given["poll_interval_s"])
    if "backoff_max_s" in given:
        given["backoff_min_s"] = min(WatchOptions.backoff_min_s, given["backoff_max_s"])
    return WatchOptions(
        mode=mode,
        reconcile_every_s=parse_duration(reconcile_every),
        initial_pass=not skip_initial_pass,
        http=http,
        **given,
    )


def _emit(summary: WatchSummary, ctx: Context) -> None:
    if ctx.as_json:
        click.echo(redact(json.dumps({**summary.to_dict(), "status": "stopped"}), ctx.secrets))
    else:
        click.echo(
            f"{summary.job}: stopped ({summary.mode}) · inserted {summary.inserted:,}"
            f" · deleted {summary.deleted:,} · rejected {summary.rejected:,}"
            f" · batches {summary.batches:,}"
            f" · full passes {summary.full_passes} · reconnects {summary.reconnects}"
        )
    logging.shutdown()
    finish(0)
