"""What every command's run shares: its report's base, and the envelope around its work.

The envelope logs the start, retries transient failures, turns any exception into a failed
report (never an ``ok`` one: a run is ``ok`` only when it finished), finishes the report,
writes its history row and logs the end. `run` and `check` differ only in their work and their
report's figures.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from idsync.config import Settings
from idsync.errors import IdsyncError, InterruptedRun, as_idsync_error
from idsync.retry import with_retries

log = logging.getLogger("idsync")

MAX_SAMPLES = 20


class Status(StrEnum):
    """Outcome of a run or a check; each has its exit code."""

    OK = "ok"
    """Finished: every id the source has is in the target (or would be, in a dry run); for a
    check, both sides were proven to agree (its ``proof`` says how)."""
    PARTIAL = "partial"
    """A run finished, but some ids were rejected: see ``rejected_samples``."""
    DRIFT = "drift"
    """A check found ids missing, orphaned or that cannot be stored, or rows duplicated."""
    FAILED = "failed"
    """Stopped by an error; batches committed before it stay committed."""
    REFUSED = "refused"
    """Stopped by a safety guard before writing anything more."""
    STOPPED = "stopped"
    """A watcher's full pass ended by the watcher's own stop (SIGTERM): its normal end, not a
    failure and not a success; batches committed before it stay committed."""


EXIT_CODES = {
    Status.OK: 0, Status.FAILED: 1, Status.REFUSED: 3, Status.PARTIAL: 4, Status.DRIFT: 4,
    Status.STOPPED: 0,
}  # fmt: skip
SUCCESS = frozenset({Status.OK, Status.PARTIAL})
"""Statuses that count as a success: the work finished (partial: some ids rejected)."""


@dataclass
class Rejected:
    """One id that was not inserted, and why."""

    id: str
    reason: str


@dataclass
class BaseReport:
    """What every report has: who, when, how it ended, what was rejected and retried."""

    job: str
    status: Status = Status.OK
    exit_code: int = 0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    duration_s: float = 0.0
    rejected: int = 0
    """Source ids that cannot be stored exactly; never inserted."""
    rejected_samples: list[Rejected] = field(default_factory=list)
    attempts: int = 0
    """Passes made: 1, plus one per transient failure retried."""
    retried: list[str] = field(default_factory=list)
    """The transient errors that were retried, in order."""
    source: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent in each part of the work (``connect_s``, ``insert_s``, …), summed over
    attempts; what is not in any of them is start-up and the end."""
    _clock: float = field(default_factory=time.monotonic, repr=False)

    def start_attempt(self) -> None:
        """A new pass begins: forget what the previous one found."""
        self.attempts += 1

    def add_phase(self, name: str, seconds: float) -> None:
        self.phases[name] = round(self.phases.get(name, 0.0) + max(seconds, 0.0), 4)

    @contextlib.contextmanager
    def timing(self, name: str) -> Iterator[None]:
        """Add the time the block takes to phase ``name``, whether it ends well or not."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add_phase(name, time.perf_counter() - started)

    def reject(self, text: str, reason: str) -> None:
        self.rejected += 1
        if len(self.rejected_samples) < MAX_SAMPLES:
            self.rejected_samples.append(Rejected(text, reason))

    def fail(self, exc: IdsyncError) -> None:
        self.error = str(exc)
        self.exit_code = exc.exit_code
        refused = exc.exit_code == EXIT_CODES[Status.REFUSED]
        self.status = Status.REFUSED if refused else Status.FAILED

    def stopped(self, exc: IdsyncError) -> None:
        """Ended as its daemon was asked to: see :attr:`Status.STOPPED`."""
        self.error, self.status, self.exit_code = str(exc), Status.STOPPED, 0

    def outcome(self) -> Status:
        """The status of a report that finished without an error."""
        raise NotImplementedError

    def finish(self) -> None:
        self.duration_s = round(time.monotonic() - self._clock, 3)
        if self.error is None:
            self.status = self.outcome()
            self.exit_code = EXIT_CODES[self.status]

    def end_line(self) -> tuple[str, dict[str, int]]:
        """The figures of the end log line, after the status, and those of them a JSON log
        line carries as ``counts``."""
        return f"{self.rejected} rejected, {self.duration_s:.2f} s", {}

    KEYS: ClassVar[tuple[str, ...]] = ()
    """The JSON object's keys in the order the report has always printed them (a report's own
    figures between its who-and-when and its outcome); empty: the fields' order."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_clock")
        data["status"] = str(self.status)
        return {key: data[key] for key in self.KEYS} if self.KEYS else data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def tail_lines(self) -> list[str]:
        """The last lines of :meth:`to_text`: warnings, then the error."""
        lines = [f"  warning: {w}" for w in self.warnings]
        if self.error:
            lines.append(f"  error: {self.error}")
        return lines


@dataclass(frozen=True)
class Command:
    """How a command's envelope names it in its history row and its log lines."""

    history: str
    """The ``command`` of its history row."""
    label: str
    """The start and end lines read ``[job] {label}start`` and ``[job] {label}end: …``."""
    event: str
    """The ``event`` of those lines is ``{event}start`` and ``{event}end``."""


R = TypeVar("R", bound=BaseReport)


def enveloped(
    report: R,
    work: Callable[[], None],
    *,
    settings: Settings,
    command: Command,
    record: Callable[[Mapping[str, Any]], object] | None,
    stop: threading.Event | None = None,
    stop_is_the_end: bool = False,
) -> R:
    """Run ``work`` (one pass, filling ``report``) with retries, and return ``report``.

    Raises an :class:`~idsync.errors.IdsyncError` when it gives up, with ``report`` as its
    ``report``; any other exception as an :class:`~idsync.errors.UnexpectedError` naming its
    type, Ctrl-C as itself. Either way ``report`` is finished, failed, and ``record``-ed: a
    caller that passed it in has it, whatever was raised. With ``stop_is_the_end`` (a daemon's
    pass), an interruption by ``stop`` is recorded as stopped, and said without an error.
    """
    job = report.job
    context = {"job": job, "run_id": report.run_id}
    log.info(
        "[%s] %sstart", job, command.label, extra={**context, "event": f"{command.event}start"}
    )
    try:
        with_retries(work, settings, report, stop, what=f"{command.label}attempt".strip())
    except BaseException as exc:
        error = as_idsync_error(exc)
        error.report = report
        if stop_is_the_end and isinstance(exc, InterruptedRun) and stop and stop.is_set():
            report.stopped(error)
            log.info("[%s] %sstopped: %s", job, command.label, error, extra=context)
            raise
        report.fail(error)
        log.error(
            "[%s] %serror: %s", job, command.label, error, extra={**context, "event": "error"}
        )
        if error is exc or not isinstance(exc, Exception):
            raise
        raise error from exc
    finally:
        report.finish()
        if record is not None:
            record(report.to_dict())
        figures, counts = report.end_line()
        extra = {**context, "event": f"{command.event}end", "duration_s": report.duration_s}
        log.info(
            "[%s] %send: %s, %s",
            job,
            command.label or "job ",
            report.status,
            figures,
            extra={**extra, "counts": counts} if counts else extra,
        )
    return report
