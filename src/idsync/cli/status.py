"""`idsync status`: recent runs from `idsync_runs`, and whether the last success is fresh."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import click

from idsync.checks import parse_duration
from idsync.cli.args import CommonArgs, common_options
from idsync.cli.common import Context, fail, finish, printing, resolve
from idsync.errors import ConfigError, IdsyncError
from idsync.ledger import Progress
from idsync.runs import RunRecord
from idsync.target import Target
from idsync.targets import open_target

STALE = 4
SYNCS = ("run", "watch", "work")
"""Commands whose success means the target held every id: a worker succeeds once its round
is done."""


def parse_age(text: str | None) -> float | None:
    """``"26h"``, ``"90m"``, ``"1d"``, ``"3600"`` (seconds) as seconds."""
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ConfigError:
        raise click.BadParameter(
            f"{text!r}: a duration such as 90m, 26h or 2d", param_hint="--max-age"
        ) from None


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)}s"
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m" if hours else f"{minutes}m"


@click.command()
@common_options
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=10, show_default=True, help="Runs to show."
)
@click.option("--all-jobs", is_flag=True, help="Show every job's runs, not only --job's.")
@click.option("--max-age", metavar="AGE", help="Exit 4 if the last success is older (e.g. 26h).")
def status(*, common: CommonArgs, limit: int, all_jobs: bool, max_age: str | None) -> None:
    """Recent runs and the time since the last success; exit 4 when that is too old."""
    max_age_s = parse_age(max_age)
    ctx = resolve(common, {}, need_mongo=False)
    name = None if all_jobs else ctx.job.name
    try:
        with open_target(ctx.settings, ctx.job) as target:
            target.connect()
            runs = target.recent_runs(name, limit)
            jobs = sorted({r.job for r in runs} | ({name} if name else set()))
            last = {job: target.last_success(job, SYNCS) for job in jobs}
            rounds = _rounds(target, name)
    except IdsyncError as exc:
        fail(ctx, exc)
    now = datetime.now(UTC)
    stale = [job for job, run in last.items() if _is_stale(run, now, max_age_s)]
    with printing():
        _show(ctx, runs, last=last, now=now, stale=stale, rounds=rounds)
    finish(STALE if stale else 0)


def _rounds(target: Target, job: str | None) -> list[tuple[str, Progress]]:
    """The newest `idsync work` round of each of the jobs' keys; none where no worker ever
    ran (no ledger) or the user may not read it."""
    try:
        ledger = target.ledger("")
        found = ledger.newest_rounds(job)
        return [(key, target.ledger(key).progress(round_id)) for key, round_id in found]
    except IdsyncError:
        return []


def _round_line(key: str, p: Progress) -> str:
    total = p.todo + p.claimed + p.done
    return (
        f"work round {p.round_id} of {key}: {p.done}/{total} ranges done, {p.claimed} claimed"
        f" ({p.expired} past their lease), {p.todo} left; {p.source_ids:,} ids read,"
        f" {p.inserted:,} inserted"
    )


def _command(run: RunRecord) -> str:
    return f"{run.command}-dry" if run.dry_run else run.command


def _is_stale(run: RunRecord | None, now: datetime, max_age: float | None) -> bool:
    if max_age is None:
        return False
    return run is None or (now - run.finished_at).total_seconds() > max_age


def _show(
    ctx: Context,
    runs: list[RunRecord],
    *,
    last: dict[str, RunRecord | None],
    now: datetime,
    stale: list[str],
    rounds: list[tuple[str, Progress]],
) -> None:
    ages = {job: (now - r.finished_at).total_seconds() if r else None for job, r in last.items()}
    if ctx.as_json:
        click.echo(json.dumps({
            "runs": [r.to_dict() for r in runs],
            "last_success": {job: r.to_dict() if r else None for job, r in last.items()},
            "last_success_age_s": ages, "stale": stale,
            "work_rounds": [{"key": key, **dataclasses.asdict(p), "finished": p.finished}
                            for key, p in rounds],
        }))  # fmt: skip
        return
    header = f"{'started (UTC)':<20} {'job':<20} {'command':<7} {'status':<8} {'inserted':>9}"
    click.echo(header + f" {'rejected':>8} {'seconds':>8}  error")
    for r in runs:
        click.echo(
            f"{r.started_at:%Y-%m-%d %H:%M:%S}  {r.job:<20} {_command(r):<7} {r.status:<8}"
            f" {r.inserted if r.inserted is not None else '-':>9}"
            f" {r.rejected if r.rejected is not None else '-':>8} {r.duration_s:>8.2f}"
            f"  {(r.error or '')[:60]}"
        )
    for job, age in ages.items():
        when = f"{_ago(age)} ago" if age is not None else "never"
        flag = "  STALE" if job in stale else ""
        click.echo(f"last success of {job}: {when}{flag}")
    for key, progress in rounds:
        click.echo(_round_line(key, progress))
