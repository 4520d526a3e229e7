"""Retrying a whole pass after a transient failure: shared by `sync` and `check`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from idsync.config import Settings
from idsync.errors import InterruptedRun, TransientError

log = logging.getLogger("idsync")

MAX_PAUSE_S = 60.0


class Attempts(Protocol):
    """What a report keeps of its attempts."""

    job: str
    run_id: str
    attempts: int
    retried: list[str]

    def start_attempt(self) -> None: ...

    def add_phase(self, name: str, seconds: float) -> None: ...


def with_retries(
    attempt: Callable[[], None],
    settings: Settings,
    report: Attempts,
    stop: threading.Event | None = None,
    what: str = "attempt",
) -> None:
    """Call ``attempt`` until it succeeds, retrying a :class:`TransientError` up to
    ``settings.retries`` times after a pause that doubles each time; ``stop`` ends the waiting."""
    stop = stop or threading.Event()
    while True:
        report.start_attempt()
        try:
            attempt()
            return
        except TransientError as exc:
            if stop.is_set():  # asked to stop: what ends the run is the asking
                raise _interrupted(exc) from exc
            if report.attempts > settings.retries:
                raise
            pause = min(settings.retry_backoff_s * 2 ** (report.attempts - 1), MAX_PAUSE_S)
            report.retried.append(str(exc))
            log.warning(
                "[%s] %s %d failed (%s); retrying in %.1f s",
                report.job, what, report.attempts, exc, pause,
                extra={"job": report.job, "run_id": report.run_id, "event": "retry"},
            )  # fmt: skip
            waited = time.perf_counter()
            stopped = stop.wait(pause)
            report.add_phase("retry_wait_s", time.perf_counter() - waited)
            if stopped:
                raise _interrupted(exc) from exc


def _interrupted(exc: TransientError) -> InterruptedRun:
    return InterruptedRun(f"interrupted while waiting to try again after: {exc}")
