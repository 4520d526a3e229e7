"""`work()`: one worker of a round: plan it if none is open, then claim ranges until none is left.

Every process runs the same thing. The first to find no unfinished round plans one under the
target's run lock (a connection of its own: the lock ends with it); every worker then claims
ranges from the ledger (:mod:`idsync.ledger`) until all are done, waiting meanwhile for ranges
that others hold: a worker that died gives its range back when its lease ends. A range is the
ids of a stretch of the `_id` index: read in order, compared with the target's ids between the
first and the last of each batch, the missing inserted in a batch that commits.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from idsync.config import Job, Settings
from idsync.envelope import Command, enveloped
from idsync.errors import ConfigError, InterruptedRun
from idsync.ids import DUPLICATE_TEXT, ColumnFit, is_oid_text
from idsync.ledger import OBJECT_IDS, Ledger, Range, split, worker_name
from idsync.mongo.source import MongoSource, ScanOrder
from idsync.mongo.values import encode_batch
from idsync.target import Column, Target
from idsync.targets import open_target, record_run
from idsync.work.lease import Heartbeat
from idsync.work.report import WorkReport

log = logging.getLogger("idsync")
WORK = Command(history="work", label="work ", event="work-")
PLAN = Command(history="plan", label="plan ", event="plan-")
"""A round planned and not worked: not a success of the job's (`status` counts `work`)."""


@dataclass(frozen=True)
class WorkOptions:
    ranges: int = 16
    """Ranges a new round is cut into (by ObjectId creation time), plus one for other `_id`s."""
    lease_s: int = 60
    """How long a claim holds without being renewed (each batch renews it): a dead worker's
    range is taken again after this."""
    wait_s: float = 1.0
    """Between two looks at the ledger while other workers hold the last ranges."""
    new_round: bool = False
    """Plan a new round even if one is unfinished (`idsync plan`), and work nothing."""
    fresh_s: float = 900.0
    """A finished round planned less than this long ago is the current one still: a worker
    that comes late (a pod restarted, a task retried) finds it done and ends, instead of
    reading everything again alone. `idsync plan` starts a new one at any time."""


def work(
    job: Job,
    settings: Settings,
    options: WorkOptions | None = None,
    stop: threading.Event | None = None,
    report: WorkReport | None = None,
) -> WorkReport:
    """Work ``job``'s current round (planning it if none is open) until every range is done.

    Raises :class:`~idsync.errors.ConfigError` for a job that ranges cannot serve (a field
    other than `_id`, a column without a UNIQUE index, a collation that does not sort hex texts
    as bytes); other failures as :func:`~idsync.run.sync.sync` does, retried the same way.
    """
    options = options or WorkOptions()
    stop = stop or threading.Event()
    report = report or WorkReport(job=job.name)
    owner = worker_name()

    def attempt() -> None:
        Worker(job, settings=settings, options=options, report=report, stop=stop,
               owner=owner).execute()  # fmt: skip

    command = PLAN if options.new_round else WORK

    def record(figures: Mapping[str, Any]) -> None:
        record_run(settings, job, command.history, figures)

    return enveloped(report, attempt, settings=settings, command=command, record=record, stop=stop)


class Worker:
    def __init__(
        self,
        job: Job,
        *,
        settings: Settings,
        options: WorkOptions,
        report: WorkReport,
        stop: threading.Event,
        owner: str,
    ) -> None:
        self.job, self.settings, self.options, self.report = job, settings, options, report
        self.stop, self.owner = stop, owner

    def execute(self) -> None:
        with (
            MongoSource(self.settings, self.job, ScanOrder.ID_INDEX) as source,
            open_target(self.settings, self.job) as target,
            open_target(self.settings, self.job) as books,  # the ledger's: leases beat on it
        ):
            source.ping()
            target.connect()
            column = target.inspect()
            self._require(target, column)
            if self.job.delete_orphans and self.report.attempts == 1:
                self.report.warnings.append(
                    "the job mirrors (delete_orphans) but `idsync work` only inserts: orphans stay"
                    " until `idsync run` or a watcher deletes them"
                )
            books.connect()
            ledger = books.ledger(self._key(source, target))
            ledger.create()
            round_id = self._round(ledger, source)
            self.report.round_id = round_id
            if self.options.new_round:
                return
            self._claim_all(ledger, round_id, source, target, column.fit)

    def _key(self, source: MongoSource, target: Target) -> str:
        """A round's key in the ledger: the job's name, and a digest of what it syncs (two jobs
        of one name, or one job edited or given another --mongo-db, never share a round)."""
        where = (
            f"{source.database}.{self.job.collection}.{self.job.field}"
            f" > {target.shown_table}.{self.job.column}"
        )
        return f"{self.job.name[:160]}@{hashlib.sha256(where.encode()).hexdigest()[:16]}"

    def _require(self, target: Target, column: Column) -> None:
        job = self.job
        if job.field != "_id":
            raise ConfigError(f"work reads ranges of _id: {job.field} is not _id; use run")
        if not column.unique:
            raise ConfigError(
                f"work needs a UNIQUE index on {job.table}.{job.column} (a range done twice must"
                f" not store an id twice): ALTER TABLE {job.table} ADD UNIQUE ({job.column})"
            )
        if not target.sorts_hex_as_bytes(column):
            raise ConfigError(
                f"work compares ranges of ObjectId texts: collation {column.collation} of"
                f" {job.table}.{job.column} does not sort them as bytes; use run"
            )

    def _round(self, ledger: Ledger, source: MongoSource) -> int:
        """The round to work: the newest while it has ranges left or was planned less than
        ``fresh_s`` ago (a late worker of a finished round has nothing to do), else a new one
        planned under the run lock (of a connection of its own, so that it ends with the
        plan)."""
        if (current := self._current(ledger)) is not None:
            return current
        with open_target(self.settings, self.job) as planner:
            planner.connect()
            planner.inspect()
            with self.report.timing("lock_wait_s"):
                planner.lock(self.settings.lock_timeout_s, self.stop)
            if (current := self._current(ledger)) is not None:  # planned while we waited
                return current
            span = source.object_id_span()
            whole: list[tuple[str | None, str | None]] = [(None, None)]
            bounds = split(*span, self.options.ranges) if span else whole
            round_id = ledger.new_round(bounds)
        log.info(
            "[%s] work: round %d planned, %d ranges", self.job.name, round_id, len(bounds) + 1,
            extra={"job": self.job.name, "event": "work-plan"},
        )  # fmt: skip
        return round_id

    def _current(self, ledger: Ledger) -> int | None:
        latest = ledger.latest_round()
        if self.options.new_round or latest is None:
            return None
        # A round's id is the time it was planned, in milliseconds; one from a clock that ran
        # ahead (a negative age) is never fresh: it would keep every late worker idle.
        fresh = 0 <= time.time() - latest / 1000 < self.options.fresh_s
        return latest if fresh or not ledger.progress(latest).finished else None

    def _claim_all(
        self, ledger: Ledger, round_id: int, source: MongoSource, target: Target, fit: ColumnFit
    ) -> None:
        while not self._stopped():
            part = ledger.claim(round_id, self.owner, self.options.lease_s)
            if part is not None:
                self._range(part, ledger, source, target, fit)
                continue
            progress = ledger.progress(round_id)
            self.report.ranges_in_round = progress.todo + progress.claimed + progress.done
            # A round that took longer than --fresh-for redoes the ranges new documents went
            # to (once: done again, they are recent); another worker may be doing so already.
            if progress.finished and not ledger.reopen_stale(round_id, self.options.fresh_s):
                progress = ledger.progress(round_id)
                if progress.finished:
                    self.report.round_rejected = progress.rejected
                    return
                continue
            self.stop.wait(self.options.wait_s)  # others hold the last ranges: theirs, or gone

    def _stopped(self) -> bool:
        if self.stop.is_set():
            raise InterruptedRun(
                f"interrupted after {self.report.ranges} ranges ({self.report.inserted:,} ids"
                " inserted); any worker finishes the round"
            )
        return False

    def _range(
        self, part: Range, ledger: Ledger, source: MongoSource, target: Target, fit: ColumnFit
    ) -> None:
        report, inserted, rejected = self.report, self.report.inserted, self.report.rejected
        seen = 0
        try:
            with Heartbeat(ledger, part, self.owner, self.options.lease_s) as beat:
                for texts in self._texts(part, source, fit):
                    seen += len(texts)
                    self._insert(part, texts, target)
                    if beat.lost:
                        log.warning("[%s] work: %s was taken over (this worker was silent past"
                                    " its lease)", self.job.name, part)  # fmt: skip
                        return
                    self._stopped()
        except InterruptedRun:
            ledger.give_back(part, self.owner)  # to any worker, at once: not after its lease
            raise
        counts = (seen, report.inserted - inserted, report.rejected - rejected)
        if ledger.finish(part, self.owner, counts):
            report.ranges += 1
            report.source_ids += seen

    def _texts(self, part: Range, source: MongoSource, fit: ColumnFit) -> Iterator[list[str]]:
        if part.kind == OBJECT_IDS:
            for oids, others in source.range_id_batches(part.lo, part.hi):
                yield encode_batch(oids, others, fit, self.report.reject)
            return
        seen: set[str] = set()  # the rest is few ids: all of its texts in memory
        for oids, others in source.other_id_batches():
            yield self._distinct(encode_batch(oids, others, fit, self.report.reject), seen, source)

    def _distinct(self, texts: list[str], seen: set[str], source: MongoSource) -> list[str]:
        """The texts no other source id has: int 5 and "5" in the rest, or a string with an
        ObjectId's text, are two ids of one text, and the second is rejected as `run` does."""
        twins = source.object_id_twins([text for text in texts if is_oid_text(text)])
        kept = []
        for text in texts:
            if text in seen or text in twins:
                self.report.reject(text, DUPLICATE_TEXT)
                continue
            seen.add(text)
            kept.append(text)
        return kept

    def _insert(self, part: Range, texts: list[str], target: Target) -> None:
        """Insert what of ``texts`` the target lacks; a range of ObjectIds reads the target's
        ids between the batch's first and last (the texts sort as the ids do)."""
        if part.kind == OBJECT_IDS and texts:
            with self.report.timing("target_read_s"):
                present = target.read_between(min(texts), max(texts))
            texts = [text for text in texts if text not in present]
        if not texts:
            return
        with self.report.timing("insert_s"):
            result = target.insert_batch(texts)
        self.report.batches += 1
        self.report.inserted += result.inserted
        self.report.restored += result.restored
        self.report.concurrent += max(0, len(result.landed) - result.inserted - result.restored)
        for text, reason in result.rejected:
            self.report.reject(text, reason)
