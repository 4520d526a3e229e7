"""What a check reads from each side, counted: MongoDB's keys, the target's values.

MongoDB's side is its keys, read once and summarised on the client; the target summarises its
ObjectId texts itself (:meth:`~idsync.target.Target.buckets`). Everything else (string, int,
UUID ids; values of any other shape) is read and compared exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from idsync.errors import InterruptedRun
from idsync.mongo.raw import split_batch
from idsync.mongo.source import MongoSource
from idsync.target import Target


@dataclass
class Reads:
    """What a check read from the servers, and how long their counts per bucket took; a batch
    read with ``stop`` set ends the check (:class:`~idsync.errors.InterruptedRun`)."""

    source_ids: int = 0
    target_ids: int = 0
    mongo_bytes: int = 0
    mongo_count_s: float = 0.0
    mysql_count_s: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def tick(self) -> None:
        if self.stop.is_set():
            raise InterruptedRun("interrupted before the end: the check proved nothing")


def mongo_values(source: MongoSource, query: dict[str, Any], reads: Reads) -> Iterator[object]:
    """The raw ``_id`` of every document matching ``query``; ObjectIds come as their text."""
    for oids, others in mongo_batches(source, query, reads):
        yield from oids
        yield from others


def mongo_batches(
    source: MongoSource, query: dict[str, Any], reads: Reads
) -> Iterator[tuple[list[str], list[object]]]:
    """:func:`mongo_values` a reply batch at a time: (ObjectId texts, other raw values)."""
    for batch in source.id_batches(query):
        reads.tick()
        reads.mongo_bytes += len(batch)
        oids, others = split_batch(batch)
        reads.source_ids += len(oids) + len(others)
        yield oids, others


def target_values(target: Target, reads: Reads) -> Iterator[str]:
    """Every non-null value of the column, counted as read."""
    for texts in target_batches(target, reads):
        yield from texts


def target_pages(target: Target, size: int, reads: Reads) -> Iterator[list[str]]:
    """The column's values in its order, ``size`` at a time, counted as read."""
    for texts in target.read_ordered_batches(size):
        reads.tick()
        reads.target_ids += len(texts)
        yield texts


def target_batches(target: Target, reads: Reads) -> Iterator[list[str]]:
    """:func:`target_values` a fetch at a time."""
    for texts in target.read_id_batches():
        reads.tick()
        reads.target_ids += len(texts)
        yield texts
