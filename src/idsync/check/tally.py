"""Tally: turn what the diff yields into a check's figures, telling missing ids from rejected ones.

A source id the target lacks is *missing* when the column could store it, and *rejected* when it
equals another stored value under the column's collation (``'abc'`` beside ``'ABC'`` in a
case-insensitive column): the sync would be refused there too. That is asked of the server in
chunks, and only when the column's collation can make two different texts equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from idsync.check.report import CheckReport
from idsync.diff import DiffCounts, Tag, diff_batches
from idsync.target import Column, Target

_CHUNK = 1000
DUPLICATE_REASON = "another source id has the same text (e.g. int 5 and '5')"


class Tally:
    """Counts and samples of one check, fed by any number of diffs (one per bucket)."""

    def __init__(self, report: CheckReport, target: Target, column: Column) -> None:
        self.report, self.target = report, target
        self.collisions_possible = not column.exact
        self.rows_read = 0
        """Target rows read into sets so far."""
        self.source_seen = 0
        """Source texts diffed so far."""
        self._pending: list[str] = []

    def target_set(self, values: Iterable[str]) -> set[str]:
        """The distinct values; rows repeating one are counted as duplicate rows."""
        return self.target_set_of(_chunks(values))

    def target_set_of(self, batches: Iterable[list[str]]) -> set[str]:
        """:meth:`target_set` of values that come a batch at a time."""
        found: set[str] = set()
        rows = 0
        for batch in batches:
            rows += len(batch)
            found.update(batch)
        self.rows_read += rows
        self.report.duplicate_rows += rows - len(found)
        return found

    def diff(self, source: Iterable[str], target: set[str], unique_source: bool) -> None:
        """Compare a stream of source texts with the target's set (consumed)."""
        self.diff_batches(_chunks(source), target, unique_source)

    def diff_batches(
        self, source: Iterable[list[str]], target: set[str], unique_source: bool
    ) -> None:
        """:meth:`diff` of source texts that come a batch at a time."""
        counts = DiffCounts()
        self.tagged(diff_batches(source, target, counts, unique_source=unique_source), counts)

    def tagged(self, tagged: Iterable[tuple[Tag, list[str]]], counts: DiffCounts) -> None:
        """Account for a diff's (or a merge's) tagged ids; ``counts`` final once it ends."""
        for tag, texts in tagged:
            for text in texts:
                if tag is Tag.MISSING:
                    self._missing(text)
                elif tag is Tag.DUPLICATE:
                    self.report.reject(text, DUPLICATE_REASON)
                else:
                    self.report.add_orphan(text)
        self.source_seen += counts.source

    def _missing(self, text: str) -> None:
        if not self.collisions_possible:
            self.report.add_missing(text)
            return
        self._pending.append(text)
        if len(self._pending) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        """Classify the missing ids still held."""
        pending, self._pending = self._pending, []
        collided = self.target.stored_equal(pending)
        for text in pending:
            other = collided.get(text)
            if other is None:
                self.report.add_missing(text)
            else:
                self.report.reject(
                    text, f"collides with stored value {other!r} under the column's collation"
                )


def _chunks(values: Iterable[str], size: int = 10_000) -> Iterator[list[str]]:
    it = iter(values)
    while chunk := list(islice(it, size)):
        yield chunk
