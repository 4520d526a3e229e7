"""`check()`: prove that the target holds exactly the source's ids, or say where it does not.

Nothing is written. Ids are split in two by shape, the same way on both sides:

- ObjectId ``_id``s in MongoDB, and values shaped like an ObjectId's text (24 lowercase hex
  characters) in MySQL, are compared **by buckets** (:mod:`buckets`): a summary per range
  of ids (a count and two checksums of the texts) computed by MySQL, and by the client from the
  source's keys, read once (MongoDB's aggregation has no hash function; a checksum computed
  digit by digit costs it more than sending the keys). MySQL's ids are read only in the ranges
  whose summaries differ. A MongoDB string id that happens to be 24 hex characters is not an
  ObjectId, but its text lands in the same place in MySQL, so it joins its bucket.
- Everything else (string, int, UUID ids; values of any other shape) is read and compared
  **exactly**, through the same encoding and checks as the sync.

A column whose server cannot summarise per bucket (or whose collation does not sort hex text as
bytes) is read whole instead. ``CheckOptions.check_exact`` compares every id of both sides,
streamed through the sync's diff, like a dry run that also lists orphans.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from idsync import plan
from idsync.check.buckets import Difference, SortedIds, Walk, WalkFigures, draw_moduli
from idsync.check.report import CheckReport, Method, SideMethod
from idsync.check.sides import Reads, mongo_batches, mongo_values, target_batches, target_pages
from idsync.check.tally import Tally
from idsync.config import Job, Settings
from idsync.diff import DiffCounts
from idsync.envelope import Command, enveloped
from idsync.errors import ConfigError
from idsync.ids import DUPLICATE_TEXT, PRIMES, ColumnFit, UnsupportedId, is_oid_text
from idsync.merge import merge_batches
from idsync.mongo.source import MongoSource
from idsync.mongo.values import encode_batch, encode_fitting
from idsync.target import Buckets, Column, Target
from idsync.targets import open_target, record_run

log = logging.getLogger("idsync")

__all__ = ["CheckOptions", "CheckReport", "check"]

CHECK = Command(history="check", label="check ", event="check-")

EXACT_PROOF = "every id compared: the target holds exactly the source's ids"
BUCKETS_PROOF = (
    "every ObjectId bucket has the same count and the same two 26-bit checksums of its texts on"
    " both sides (a difference could hide only behind a collision of both), every other id"
    " compared: the target holds exactly the source's ids"
)
SOURCE_REASON = (
    "MongoDB's aggregation has no hash function: a checksum per bucket, digit by digit, costs"
    " the server more than sending the keys (10x on mongo-java-server; FerretDB lacks the"
    " operators), so the keys are read once and summarised here"
)


@dataclass(frozen=True)
class CheckOptions:
    """Choices for one check."""

    check_exact: bool = False
    """Compare every id of both sides, never summaries: no reliance on checksums, at the cost
    of reading everything."""
    bucket_ids: int = 1000
    """About how many ids a top-level bucket should hold: smaller buckets send more summaries
    and read fewer ids around each difference."""
    leaf_ids: int = 100
    """A differing bucket with at most this many ids on each side is read id by id; a larger one
    is first counted again in 16 smaller buckets."""
    exact_share: float = 0.25
    """When the buckets that differ hold more than this share of all ids, read those sides whole
    instead: at that point counting and splitting cost more than reading."""

    def __post_init__(self) -> None:
        if not 1 <= self.bucket_ids <= 10_000_000:
            raise ConfigError("bucket_ids must be from 1 to 10000000")
        if not 1 <= self.leaf_ids <= 1_000_000:
            raise ConfigError("leaf_ids must be from 1 to 1000000")
        if not 0 <= self.exact_share <= 1:
            raise ConfigError("exact_share must be from 0 to 1")


def check(
    job: Job,
    settings: Settings,
    options: CheckOptions | None = None,
    report: CheckReport | None = None,
    stop: threading.Event | None = None,
) -> CheckReport:
    """Compare the job's source and target without writing; return the report.

    ``status`` is ``ok`` (exit code 0) when both sides were proven to agree (``report.proof``
    says how), ``drift`` (4) when ids are missing, orphaned or rejected, or rows duplicated.
    Transient failures are retried like a sync's (``settings.retries``).
    Raises :class:`~idsync.errors.IdsyncError` when it gives up, with the report so far attached
    as ``exc.report``: any other exception as an :class:`~idsync.errors.UnexpectedError` naming
    its type, Ctrl-C as itself; either way the check is recorded as failed, never as ok. Never
    prints, prompts or exits; logs to the ``idsync`` logger. A ``report`` passed in is the one
    filled in, so that a caller has it whatever is raised. Setting ``stop`` ends the check at
    its next batch read (:class:`~idsync.errors.InterruptedRun`).
    """
    options = options or CheckOptions()
    stop = stop or threading.Event()
    report = report or CheckReport(job=job.name)
    report.exact = options.check_exact

    def record(figures: Mapping[str, Any]) -> None:
        record_run(settings, job, "check", figures)

    def attempt() -> None:
        CheckPass(job, settings, options, report, stop).execute()

    return enveloped(report, attempt, settings=settings, command=CHECK, record=record, stop=stop)


@dataclass
class Sides:
    """The two sides of the ObjectId part, and the values of the rest."""

    source: SortedIds
    target: Buckets
    source_rest: Iterator[object]
    target_rest: Iterator[str]


class CheckPass:
    """One attempt at a check, wired together once."""

    def __init__(
        self,
        job: Job,
        settings: Settings,
        options: CheckOptions,
        report: CheckReport,
        stop: threading.Event,
    ) -> None:
        self.job, self.settings, self.options, self.report = job, settings, options, report
        self.reads = Reads(stop=stop)
        self.target_buckets: Buckets | None = None

    def execute(self) -> None:
        with (
            MongoSource(self.settings, self.job) as source,
            open_target(self.settings, self.job) as target,
        ):
            with self.report.timing("connect_s"):
                info = source.ping()
                self.report.source = {
                    "address": source.address, "database": source.database,
                    "collection": self.job.collection, "field": self.job.field,
                    "flavour": info.flavour, "version": info.version, "scan": str(source.order),
                }  # fmt: skip
                self.report.target = {
                    "address": target.address, "database": target.database,
                    "table": self.job.table, "column": self.job.column,
                }  # fmt: skip
                target.connect()
                column = target.inspect()
                self.report.target.update(collation=column.collation, unique_index=column.unique)
            sent_before = target.bytes_sent()
            tally = Tally(self.report, target, column)
            # The comparison as one phase: reads of both sides interleave in it (count_seconds
            # splits out the servers' counting).
            with self.report.timing("compare_s"):
                if self.settings.workers > 1 and self._ranges(source, target, column):
                    pass
                elif self._choose(source, target, column):
                    self.report.proof = BUCKETS_PROOF
                    self._buckets(source, target, column, tally)
                else:
                    self.report.proof = EXACT_PROOF
                    self._exact(source, target, column, tally)
            tally.flush()
            self._measure(target, sent_before)

    def _ranges(self, source: MongoSource, target: Target, column: Column) -> bool:
        """Compared by ``settings.workers`` threads, a range each (True), where ranges serve."""
        from idsync.check.parallel import check_ranges  # noqa: PLC0415 (only when asked)

        return check_ranges(self, source, target, column)

    def _choose(self, source: MongoSource, target: Target, column: Column) -> bool:
        """Set each side's method; True when the target is summarised by buckets."""
        every = self._exact_reason(column)
        if every is not None:
            self.report.method = {
                "source": SideMethod(reason=every),
                "target": SideMethod(reason=every),
            }
            return False
        target_why = target.buckets(column, PRIMES).probe()
        if target_why is None and not target.sorts_hex_as_bytes(column):
            target_why = f"collation {column.collation} does not sort hex text as bytes do"
        self.report.method = {
            "source": SideMethod(Method.EXACT, SOURCE_REASON),
            "target": SideMethod(Method.EXACT if target_why else Method.BUCKETS, target_why),
        }
        return target_why is None

    def _exact_reason(self, column: Column) -> str | None:
        if self.options.check_exact:
            return "every id asked for (--exact)"
        if self.job.field != "_id":
            return f"{self.job.field} is not _id: its values repeat, so counts do not compare"
        if not column.fit.holds_object_ids:
            return "the column cannot hold an ObjectId's 24 characters"
        return None

    def _exact(self, source: MongoSource, target: Target, column: Column, tally: Tally) -> None:
        """Every id of both sides: the target in a set and the source streamed through the
        diff, or both merged in `_id` order (the plan that fits the memory budget)."""
        estimate = source.estimated_count()
        if estimate is None:
            estimate = target.estimated_rows()
        report, fit = self.report, column.fit
        report.plan, report.plan_reason = plan.choose(
            self.settings, self.job, target, column, estimate
        )
        if report.plan == "merge":
            others = [
                text
                for oids, rest in self._counted(source.other_id_batches())
                for text in encode_batch(oids, rest, fit, report.reject)
            ]
            ordered = (
                encode_batch(oids, rest, fit, report.reject)
                for oids, rest in self._counted(source.ordered_id_batches())
            )
            pages = target_pages(target, self.settings.read_batch_size, self.reads)
            counts = DiffCounts()
            tally.tagged(merge_batches(ordered, others, pages, counts), counts)
            report.target_ids = self.reads.target_ids
            report.source_ids = self.reads.source_ids
            return
        existing = tally.target_set_of(target_batches(target, self.reads))
        self.report.target_ids = tally.rows_read
        if self.job.field == "_id":
            raw = mongo_batches(source, {}, self.reads)
        else:
            raw = self._counted(source.value_batches())
        texts = (encode_batch(oids, others, fit, self.report.reject) for oids, others in raw)
        tally.diff_batches(texts, existing, unique_source=self.job.field == "_id")
        self.report.source_ids = self.reads.source_ids

    def _counted(
        self, batches: Iterable[tuple[list[str], list[object]]]
    ) -> Iterator[tuple[list[str], list[object]]]:
        for oids, others in batches:
            self.reads.tick()
            self.reads.source_ids += len(oids) + len(others)
            yield oids, others

    def _encode(self, values: Iterable[object], fit: ColumnFit) -> Iterator[str]:
        """Canonical texts that the column can hold; the rest are rejected, as by the sync."""
        report, hex_fits = self.report, fit.holds_object_ids
        for value in values:
            if hex_fits and isinstance(value, str) and is_oid_text(value):
                yield value  # an ObjectId's text, or a string id that is already canonical
                continue
            try:
                text = encode_fitting(value, fit)
            except UnsupportedId as exc:
                report.reject(exc.shown, exc.reason)
                continue
            yield text

    def _sides(self, source: MongoSource, target: Target, column: Column) -> Sides:
        moduli = draw_moduli()  # for this check alone: no id can be made to collide with another
        mongo = SortedIds(moduli=moduli)
        source_rest = _split(mongo_values(source, {}, self.reads), mongo)
        self.target_buckets = target.buckets(column, moduli)
        return Sides(mongo, self.target_buckets, source_rest, self.target_buckets.others())

    def _buckets(self, source: MongoSource, target: Target, column: Column, tally: Tally) -> None:
        sides = self._sides(source, target, column)
        # The rest first: it is exact, and its 24-hex string ids join the ObjectIds' buckets.
        rest_target = tally.target_set(sides.target_rest)
        hex_strings: list[str] = []
        seen = [0]
        rest_source = _divert(
            self._encode(_count(sides.source_rest, seen), column.fit), hex_strings
        )
        tally.diff(rest_source, rest_target, unique_source=True)
        rest_rows, rest_seen = tally.rows_read, seen[0] - len(hex_strings)
        mongo = sides.source
        mongo.add(hex_strings)
        for text in mongo.drop_repeats():  # ObjectId X and the string X: one text, one row
            self.report.reject(text, DUPLICATE_TEXT)

        def leaf(bucket: Difference) -> None:
            wanted = tally.target_set(sides.target.ids(bucket.prefix) if bucket.target else ())
            tally.diff(mongo.ids(bucket.prefix) if bucket.source else (), wanted, True)

        walk = Walk(mongo, sides.target, leaf, self.options.bucket_ids, self.options.leaf_ids)
        figures = WalkFigures()
        found = walk.top(figures)
        total = max(figures.source_ids, figures.target_ids)
        if found and figures.at_stake > self.options.exact_share * total:
            self.report.warnings.append(
                f"buckets holding {figures.at_stake:,} of {total:,} ObjectIds differ:"
                " read both sides whole instead of splitting them"
            )
            figures.read += 1
            leaf(Difference("", figures.source_ids, figures.target_ids))
        else:
            for bucket in found:
                walk.descend(bucket, figures)
        self._record(figures, rest_seen, rest_rows)

    def _record(self, figures: WalkFigures, rest_seen: int, rest_rows: int) -> None:
        report = self.report
        report.bucket_prefix = figures.level
        report.buckets_compared, report.buckets_differing = figures.compared, figures.differing
        report.buckets_split, report.buckets_read = figures.split, figures.read
        report.source_ids = rest_seen + figures.source_ids
        report.target_ids = rest_rows + figures.target_ids

    def _measure(self, target: Target, sent_before: int | None) -> None:
        report, reads = self.report, self.reads
        if self.target_buckets is not None:
            reads.target_ids += self.target_buckets.ids_read
            reads.mysql_count_s += self.target_buckets.count_s
        report.ids_read_source, report.ids_read_target = reads.source_ids, reads.target_ids
        report.count_seconds = {
            "mongodb": round(reads.mongo_count_s, 3),
            "mysql": round(reads.mysql_count_s, 3),
        }
        sent_after = target.bytes_sent()
        if sent_before is not None and sent_after is not None:
            report.bytes_read["mysql"] = sent_after - sent_before
        if self.job.field == "_id":
            report.bytes_read["mongodb"] = reads.mongo_bytes


def _count(values: Iterable[object], seen: list[int]) -> Iterator[object]:
    for value in values:
        seen[0] += 1
        yield value


def _split(values: Iterable[object], oids: SortedIds) -> Iterator[object]:
    """Pass on the values that are not ObjectId texts; collect those into ``oids``."""
    held: list[str] = []
    for value in values:
        if isinstance(value, str) and is_oid_text(value):
            held.append(value)
        else:
            yield value
    oids.add(held)


def _divert(texts: Iterable[str], shaped: list[str]) -> Iterator[str]:
    """Pass on texts not shaped like an ObjectId's; collect the others into ``shaped``."""
    for text in texts:
        if is_oid_text(text):
            shaped.append(text)
        else:
            yield text
