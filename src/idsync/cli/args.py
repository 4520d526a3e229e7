"""The option groups commands share, each handed to the command as one typed value.

A group's decorator adds its options and gathers their values into a frozen dataclass, so a
command's signature names what it uses (``common: CommonArgs``) instead of a ``**kw`` dict.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import click

from idsync.config import BUILTIN_JOB

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CommonArgs:
    """Where the job and the servers come from, and how the command speaks."""

    config_path: str | None
    job_name: str | None
    mongo_uri: str | None
    mysql_url: str | None
    target_url: str | None
    mongo_db: str | None
    allow_missing_source: bool | None
    orphan_action: str | None
    connect_timeout: float | None
    as_json: bool
    log_format: str
    log_level: str


@dataclass(frozen=True)
class PassArgs:
    """The options of a full pass that `run` and `watch` share."""

    batch_size: int | None
    read_batch_size: int | None
    lock_timeout: float | None
    log_ids: bool
    allow_empty_source: bool


@dataclass(frozen=True)
class MirrorArgs:
    """Mirror mode's options, shared by `run` and `watch`."""

    delete_orphans: bool | None
    max_deletes: str | None
    allow_cascade: bool

    def limits(self) -> tuple[int | None, float | None]:
        """--max-deletes as a count or a share of the target."""
        return count_or_share(self.max_deletes, "--max-deletes")


def count_or_share(text: str | None, flag: str) -> tuple[int | None, float | None]:
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
        f"{text!r}: a count (5000) or a share of the target (10%)", param_hint=flag
    )


@dataclass(frozen=True)
class ExportArgs:
    """Where a command that ends with a report exports its metrics."""

    metrics_file: str | None
    pushgateway: str | None

    @property
    def wanted(self) -> bool:
        return bool(self.metrics_file or self.pushgateway)


@dataclass(frozen=True)
class PlanArgs:
    """How `run` and `check --exact` compare the sides, and the memory they may use."""

    plan: str | None
    memory_budget: int | None
    workers: int | None
    range_reads: str | None

    def settings(self) -> dict[str, Any]:
        return {
            "plan": self.plan, "memory_budget_mb": self.memory_budget, "workers": self.workers,
            "range_reads": self.range_reads,
        }  # fmt: skip


def _gathered(kind: type[Any], name: str, options: list[Callable[[F], F]]) -> Callable[[F], F]:
    """A decorator: add ``options``, and pass their values to the command as ``name=kind(…)``."""
    names = [f.name for f in fields(kind)]

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(**kw: Any) -> Any:
            kw[name] = kind(**{key: kw.pop(key) for key in names})
            return func(**kw)

        for option in reversed(options):
            command = option(command)
        return command  # type: ignore[return-value]

    return decorate


common_options = _gathered(CommonArgs, "common", [
    click.option(
        "--config", "config_path", metavar="PATH",
        help="TOML file with [settings] and [jobs.NAME] (default ./idsync.toml; "
        "env IDSYNC_CONFIG).",
    ),
    click.option("--job", "job_name", metavar="NAME", help=f"Job to run (default {BUILTIN_JOB})."),
    click.option("--mongo-uri", metavar="URI", help="MongoDB URI (env IDSYNC_MONGO_URI)."),
    click.option(
        "--mysql-url", metavar="URL", help="mysql://user:pass@host:port/db (env IDSYNC_MYSQL_URL)."
    ),
    click.option(
        "--target-url", metavar="URL",
        help="The target, any server: mysql://, mariadb://, postgresql:// (env IDSYNC_TARGET_URL).",
    ),
    click.option("--mongo-db", metavar="NAME", help="MongoDB database (default: URI path)."),
    click.option(
        "--allow-missing-source", is_flag=True, default=None,
        help="Read a source collection that does not exist as empty (job key"
        " allow_missing_source); otherwise it is an error: a misspelt name reads as empty.",
    ),
    click.option(
        "--orphan-action", metavar="delete|mark:COLUMN",
        help="What mirroring does to an orphan's row: delete it, or set COLUMN (a nullable"
        " date and time) instead; with a mark, only unmarked rows are the target's (job key"
        " orphan_action, default delete).",
    ),
    click.option(
        "--connect-timeout", type=float, metavar="S",
        help="Seconds to wait for a server to answer (default 10).",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout."),
    click.option(
        "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
        help="Log lines on stderr as text or JSON.",
    ),
    click.option(
        "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
        show_default=True,
    ),
])  # fmt: skip

pass_options = _gathered(PassArgs, "passes", [
    click.option("--batch-size", type=int, metavar="N", help="Ids per insert transaction."),
    click.option("--read-batch-size", type=int, metavar="N", help="Ids per read round trip."),
    click.option(
        "--lock-timeout", type=float, metavar="S",
        help="Seconds to wait for another run of the same target (default 30).",
    ),
    click.option(
        "--log-ids/--no-log-ids", default=True, show_default=True,
        help="One 'Inserted <column>: <id>' line per id, as the original job logged.",
    ),
    click.option(
        "--allow-empty-source", is_flag=True,
        help="Proceed when the source has no ids but the target has rows.",
    ),
])  # fmt: skip

mirror_options = _gathered(MirrorArgs, "mirror", [
    click.option(
        "--delete-orphans/--keep-orphans", default=None,
        help="Mirror: delete the rows of ids no document has, re-verified (default: the job's"
        " delete_orphans, off).",
    ),
    click.option(
        "--max-deletes", metavar="N|P%",
        help="Refuse (exit 3, delete nothing) if more than N orphans, or P% of the target, would"
        " be deleted by a pass (default: 1%, at least 10).",
    ),
    click.option(
        "--allow-cascade", is_flag=True,
        help="Delete even where a foreign key would delete or change rows of another table.",
    ),
])  # fmt: skip

export_options = _gathered(ExportArgs, "export", [
    click.option(
        "--metrics-file", metavar="PATH",
        help="Write the run's metrics here (Prometheus text, atomically).",
    ),
    click.option(
        "--pushgateway", metavar="URL",
        help="Push the run's metrics to this Prometheus Pushgateway.",
    ),
])  # fmt: skip


plan_options = _gathered(PlanArgs, "plans", [
    click.option(
        "--plan", type=click.Choice(["auto", "set", "merge"]), default=None,
        help="set: the target's ids in memory; merge: both sides in _id order, a batch in memory"
        " (any size); auto (default): merge when the set would not fit --memory-budget.",
    ),
    click.option(
        "--memory-budget", type=int, metavar="MIB", help="The memory it may use (default 130)."
    ),
    click.option(
        "--workers", type=int, metavar="N", envvar="IDSYNC_WORKERS",
        help="Threads that work _id ranges at once, each with its own connections (default 1);"
        " one pass where the source reads no range by its index (env IDSYNC_WORKERS).",
    ),
    click.option(
        "--range-reads", type=click.Choice(["auto", "always"]), default=None,
        help="auto (default): --workers read ranges only where the source reads one by its"
        " index; always: also where each range scans the whole collection (to measure).",
    ),
])  # fmt: skip


def exact_check(flag: bool | None, setting: bool) -> bool:
    """--exact/--fast (or env IDSYNC_CHECK_EXACT) if given, else the check_exact setting."""
    return setting if flag is None else flag
