"""What a watcher's parts share: its connections, its figures, and the passes and commits that
both ways of following (change stream, polling) make in the same way."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from idsync.config import Job, RunOptions, Settings
from idsync.errors import LockHeldError, TransientError
from idsync.metrics import Metrics
from idsync.mongo.feeds import Poller, now_utc
from idsync.mongo.source import MongoSource
from idsync.run.batches import log_gone
from idsync.run.report import SyncReport
from idsync.run.sync import sync
from idsync.target import Checkpoint
from idsync.watch.health import Health
from idsync.watch.options import WatchOptions
from idsync.watch.sink import PendingBatch, Sink

log = logging.getLogger("idsync")

STREAM, POLLING = "change-stream", "polling"
_PASS_RETRY_S = 300.0  # a periodic full pass that failed is tried again this much later


@dataclass
class WatchSummary:
    """What a watcher did, from its start to its stop."""

    job: str
    mode: str = "starting"
    seen: int = 0
    inserted: int = 0
    restored: int = 0
    """Rows marked as orphans' (soft delete) whose ids came back: their marks cleared."""
    deleted: int = 0
    """Rows of deleted documents' ids deleted or marked (mirror mode), by events and passes."""
    rejected: int = 0
    batches: int = 0
    full_passes: int = 0
    gap_passes: int = 0
    reconnects: int = 0
    streams_lost: int = 0
    last_error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _Beat:
    """A full pass's progress, taken as a sign of life."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def start(self, phase: str, total: int | None) -> None:
        self.health.beat()

    def advance(self, phase: str, count: int) -> None:
        self.health.beat()


class Core:
    """One watcher's shared state. Single-threaded; only ``stop`` is touched from outside."""

    def __init__(
        self,
        job: Job,
        settings: Settings,
        options: WatchOptions,
        stop: threading.Event,
        *,
        run_options: RunOptions,
        metrics: Metrics,
        health: Health,
    ) -> None:
        self.job, self.settings, self.options, self.stop = job, settings, options, stop
        self.run_options, self.metrics, self.health = run_options, metrics, health
        self.sink = Sink(settings, job, stop, run_options)
        self.summary = WatchSummary(job.name)
        self.started = False
        """Following at least once: from then on every failure is retried, never raised."""
        self.token_unusable = False
        """The stored resume token failed: the next stream opens from now, after a gap pass."""
        first = 0.0 if options.initial_pass else options.reconcile_every_s
        self.next_pass = time.monotonic() + first
        self.last_saved = time.monotonic()
        self.pause = options.backoff_min_s
        self.terminal_failures = 0
        """Errors no retry fixes, in a row since the last progress."""

    # --- progress and pauses ----------------------------------------------------------------

    def progress(self) -> None:
        self.health.beat()
        self.pause = self.options.backoff_min_s
        self.terminal_failures = 0

    def wait_backoff(self) -> None:
        self.stop.wait(self.pause)
        self.pause = min(self.pause * 2, self.options.backoff_max_s)

    def set_mode(self, mode: str) -> None:
        if mode in (STREAM, POLLING):
            self.summary.mode = mode
        self.metrics.set_mode(mode)
        self.health.set_mode(mode)

    def count_lost(self) -> None:
        self.summary.streams_lost += 1
        self.metrics.streams_lost.inc()

    # --- passes -----------------------------------------------------------------------------

    def pass_due(self) -> bool:
        return time.monotonic() >= self.next_pass

    def reconcile(self) -> None:
        """The periodic full pass. A failure that may pass postpones it and following goes on
        (if a server is really gone, following finds out by itself); any other is raised, as
        from the first pass: a pass refused or denied now will be next time too."""
        try:
            self.full_pass()
        except LockHeldError as exc:  # another run is making that very pass: try again soon
            self.next_pass = time.monotonic() + self.options.backoff_max_s
            log.info("[%s] full pass postponed: %s", self.job.name, exc)
        except TransientError as exc:
            self.next_pass = time.monotonic() + min(self.options.reconcile_every_s, _PASS_RETRY_S)
            self.health.trouble(f"full pass failed: {exc}")
            log.error("[%s] full pass failed, following goes on: %s", self.job.name, exc)

    def full_pass(self) -> None:
        """One pass as `idsync run` makes it; raises what it raises."""
        log.info("[%s] full pass", self.job.name, extra={"job": self.job.name})
        options = replace(self.run_options, history_command="watch")
        report = SyncReport(job=self.job.name)
        try:
            sync(self.job, self.settings, options, progress=_Beat(self.health), stop=self.stop,
                 report=report)  # fmt: skip
        finally:  # what a stopped or failed pass committed is the watcher's work too
            self.summary.seen += report.source_ids
            self.summary.inserted += report.inserted
            self.summary.restored += report.restored
            self.summary.deleted += report.deleted
            self.summary.rejected += report.rejected
            self.summary.batches += report.batches
            self.metrics.seen.inc(report.source_ids)
            self.metrics.inserted.inc(report.inserted)
            self.metrics.restored.inc(report.restored)
            self.metrics.deleted.inc(report.deleted)
            self.metrics.rejected.inc(report.rejected)
            self.metrics.batches.inc(report.batches)
        self.next_pass = time.monotonic() + self.options.reconcile_every_s
        self.summary.full_passes += 1
        self.metrics.full_passes.inc()
        self.metrics.caught_up()
        self.progress()

    def gap_pass(self, source: MongoSource, since: datetime) -> None:
        """Ids created since ``since`` (less the window): what a lost stream may have missed.
        ObjectIds order by creation time, so this reads only the documents since then."""
        floor = since - timedelta(seconds=self.options.poll_window_s)
        log.warning(
            "[%s] gap pass: documents created since %s; ids that are not ObjectIds come with "
            "the next full pass",
            self.job.name, when(floor),
        )  # fmt: skip
        batch = self.sink.new_batch()
        for change in Poller(source, 0.0).scan_since(floor):
            batch.add(change)
            if len(batch) >= self.job.batch_size:
                self.commit(batch, None)
                batch = self.sink.new_batch()
        if len(batch):
            self.commit(batch, None)
        self.summary.gap_passes += 1
        self.metrics.gap_passes.inc()

    # --- writing ----------------------------------------------------------------------------

    def commit(
        self,
        batch: PendingBatch,
        checkpoint: Checkpoint | None,
        live: Callable[[list[str]], set[str]] | None = None,
    ) -> None:
        """Delete the rows of the batch's deleted documents (each re-verified with ``live``),
        then insert its ids and save ``checkpoint`` with them, in one transaction: a crash in
        between replays the events, and deleting or inserting again changes nothing."""
        if batch.gone and live is not None:
            self._delete(list(batch.gone), live)
        result = self.sink.commit(list(batch.texts), checkpoint)
        if checkpoint is not None:
            self.last_saved = time.monotonic()
        rejected = batch.rejected + result.rejected
        summary, metrics = self.summary, self.metrics
        summary.seen += batch.seen
        summary.inserted += result.inserted
        summary.restored += result.restored
        summary.rejected += len(rejected)
        summary.batches += 1
        metrics.seen.inc(batch.seen)
        metrics.inserted.inc(result.inserted)
        metrics.restored.inc(result.restored)
        metrics.rejected.inc(len(rejected))
        metrics.batches.inc()
        lag = (now_utc() - batch.oldest_at).total_seconds() if batch.oldest_at else 0.0
        metrics.caught_up(lag)
        self.progress()
        for text, reason in rejected:
            log.warning("[%s] rejected %r: %s", self.job.name, text, reason)
        self._log_inserted(result.landed, result.inserted)

    def _delete(self, texts: list[str], live: Callable[[list[str]], set[str]]) -> None:
        result = self.sink.delete(texts, live)
        self.summary.deleted += len(result.deleted)
        self.metrics.deleted.inc(len(result.deleted))
        name = self.job.name
        for text, reason in result.referenced:
            log.warning("[%s] kept %r (its document was deleted): %s", name, text, reason)
        if self.run_options.log_ids:
            log_gone(self.job, result.deleted)

    def save(self, checkpoint: Checkpoint) -> None:
        self.sink.save(checkpoint)
        self.last_saved = time.monotonic()

    def save_due(self) -> bool:
        """Time to save a position that moved with nothing to insert."""
        return time.monotonic() - self.last_saved >= self.options.checkpoint_every_s

    def _log_inserted(self, landed: list[str], inserted: int) -> None:
        name, column = self.job.name, self.job.column
        if not inserted or not self.run_options.log_ids or not log.isEnabledFor(logging.INFO):
            return
        if inserted != len(landed):
            log.info("[%s] inserted %d of %d ids; the others were stored already", name,
                     inserted, len(landed))  # fmt: skip
            return
        lines = "\n".join(f"[{name}] Inserted {column}: {text}" for text in landed)
        log.info("%s", lines, extra={"job": name, "event": "inserted", "ids": landed})


def when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"
