"""`watch()`: a full pass, then follow the source as it changes, resuming exactly where it was.

Correctness rests on three rules:

- A batch and the checkpoint that covers it are one MySQL transaction, so a crash never
  records a position beyond what is stored, nor stores ids the position has not passed.
- A new position (a stream opened from "now") is saved only after the pass that covers the time
  before it (full or gap pass) has finished: a crash in between finds the old checkpoint again.
- Inserts are idempotent (see :mod:`idsync.mysql.target`), so replaying a stretch is always safe.

Follow batches take no lock on the target: a concurrent `idsync run` stays safe, because both
insert with the same idempotent, verified statement. The target's run lock is taken by the full
passes only, so that two passes never scan at once. A lock of its own allows one watcher per
job and target (see :mod:`idsync.watch.sink`).
"""

from __future__ import annotations

import logging
import threading

from idsync.config import Job, RunOptions, Settings
from idsync.errors import (
    ConfigError,
    GuardError,
    IdsyncError,
    InterruptedRun,
    LockHeldError,
    TerminalError,
)
from idsync.metrics import Metrics
from idsync.mongo.feeds import ChangeStreamsUnsupported, StreamLost
from idsync.mongo.source import MongoSource
from idsync.watch.core import Core, WatchSummary
from idsync.watch.follow import PollFollower, StreamFollower
from idsync.watch.health import Health
from idsync.watch.options import WatchMode, WatchOptions

log = logging.getLogger("idsync")

# An error no retry fixes is tried this many times in a row (a grant may come meanwhile, and
# /healthz says 503 all along), then it ends the watcher.
TERMINAL_ATTEMPTS = 3

__all__ = ["WatchSummary", "Watcher", "watch"]


def watch(
    job: Job,
    settings: Settings,
    options: WatchOptions | None = None,
    stop: threading.Event | None = None,
    *,
    run_options: RunOptions | None = None,
    metrics: Metrics | None = None,
    health: Health | None = None,
) -> WatchSummary:
    """Keep ``job``'s target complete until ``stop`` is set; return what was done.

    Raises :class:`~idsync.errors.ConfigError` or :class:`~idsync.errors.GuardError` when it
    cannot start (no table, another watcher of the job, change streams required but missing,
    a first full pass refused). Once following, a failure that may pass (a server away, a held
    lock) is logged and retried, with a bounded backoff, until ``stop`` is set; one that no
    retry fixes (access denied, a table gone, a batch the server refuses) is tried
    :data:`TERMINAL_ATTEMPTS` times in a row, ``health`` failing all along, then raised.
    """
    options = options or WatchOptions()
    core = Core(
        job,
        settings,
        options,
        stop or threading.Event(),
        run_options=run_options or RunOptions(),
        metrics=metrics or Metrics(job.name),
        health=health or Health(options.stuck_after_s, secrets=settings.secrets),
    )
    return Watcher(core).run()


class Watcher:
    """Starts a follower, and another after each failure, until ``stop`` is set."""

    def __init__(self, core: Core) -> None:
        self.core, self.job = core, core.job
        self.polling_only = core.options.mode is WatchMode.POLL

    def run(self) -> WatchSummary:
        core = self.core
        core.set_mode("starting")
        try:
            self._open_sink()
            while not core.stop.is_set():
                self._attempt()
        finally:
            core.sink.close()
            core.set_mode("stopped")
        summary = core.summary
        log.info(
            "[%s] watch stopped: %d inserted, %d rejected, %d batches, %d full passes",
            self.job.name, summary.inserted, summary.rejected, summary.batches,
            summary.full_passes, extra={"job": self.job.name, "event": "end"},
        )  # fmt: skip
        return summary

    def _open_sink(self) -> None:
        """Connect to the target: servers not up yet are waited for, a wrong setup is not."""
        while not self.core.stop.is_set():
            try:
                self.core.sink.open()
                return
            except InterruptedRun:
                return  # a signal while waiting for the watcher's lock: stop as asked
            except (ConfigError, GuardError):
                raise
            except IdsyncError as exc:
                self._failed(exc)

    def _attempt(self) -> None:
        try:
            self._cycle()
        except InterruptedRun:
            return  # stop was set during a full pass; its batches are committed
        except StreamLost as exc:
            self.core.count_lost()
            self.core.token_unusable = True
            log.warning("[%s] %s: opening a new stream after a gap pass", self.job.name, exc)
            self.core.wait_backoff()
        except LockHeldError as exc:
            self._failed(exc)  # another run or watcher is busy with the target: try again
        except (ConfigError, GuardError) as exc:
            if not self.core.started:
                raise  # a wrong setup, found before following: say so and stop
            self._failed(exc)  # e.g. the table dropped meanwhile: ends after a few attempts
        except IdsyncError as exc:
            self._failed(exc)

    def _cycle(self) -> None:
        core, mode = self.core, self.core.options.mode
        with MongoSource(core.settings, self.job) as source:
            info = source.ping()
            core.sink.open()
            streams = mode is WatchMode.CHANGE_STREAM or (
                mode is WatchMode.AUTO and info.flavour != "ferretdb"
            )
            if streams and not self.polling_only:
                try:
                    StreamFollower(core, source).run()
                    return
                except ChangeStreamsUnsupported as exc:
                    if mode is WatchMode.CHANGE_STREAM:
                        raise ConfigError(str(exc)) from None
                    log.info("[%s] %s: polling instead", self.job.name, exc)
                    self.polling_only = True
            PollFollower(core, source).run()

    def _failed(self, exc: IdsyncError) -> None:
        """Count the failure and pause before the next attempt; raise ``exc`` once an error no
        retry fixes has come :data:`TERMINAL_ATTEMPTS` times without progress between."""
        core, terminal = self.core, is_terminal(exc)
        core.summary.last_error = str(exc)
        core.health.trouble(str(exc), terminal=terminal)
        core.terminal_failures = core.terminal_failures + 1 if terminal else 0
        if core.terminal_failures >= TERMINAL_ATTEMPTS:
            log.error(
                "[%s] %s; giving up: trying again cannot fix it", self.job.name, exc,
                extra={"job": self.job.name, "event": "error"},
            )  # fmt: skip
            raise exc
        core.summary.reconnects += 1
        core.metrics.reconnects.inc()
        log.warning("[%s] %s; trying again in %.1f s", self.job.name, exc, core.pause)
        core.wait_backoff()


def is_terminal(exc: IdsyncError) -> bool:
    """Whether trying again cannot fix ``exc``: a refusal, a wrong setup, a guard (a held lock
    is let go by its holder, so it is not one)."""
    if isinstance(exc, LockHeldError):
        return False
    return isinstance(exc, TerminalError | ConfigError | GuardError)
