"""The pure core in bounded memory: two ordered streams of ids compared a window at a time.

:mod:`idsync.diff` holds the target as a set: memory grows with the table. Here both sides
arrive in ascending order (the source's ObjectIds by the `_id` index, the target's column under a
collation that orders hex text as bytes), and each source batch is compared with the target ids
up to its last one: a target id belongs to the first source batch whose last id is not below
it, so whether the source has it is settled by that batch alone. Memory holds one source batch
and its window of target ids, whatever the sizes.

Ids outside the order (a source `_id` that is not an ObjectId; a target value that is not 24
lowercase hex digits) are few in practice and compared as sets at the end: the source's are
read first, in full, so that a hex target row matching a string `_id` is never called an orphan.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

from idsync.diff import DiffCounts, Tag
from idsync.ids import is_oid_text

__all__ = ["OutOfOrder", "merge_batches"]


class OutOfOrder(ValueError):
    """A stream went backwards: its server did not sort as the plan relies on."""


def merge_batches(
    ordered: Iterable[list[str]],
    others: Iterable[str],
    target: Iterable[list[str]],
    counts: DiffCounts,
) -> Iterator[tuple[Tag, list[str]]]:
    """Yield ``(Tag.MISSING, ids)`` per source batch, ``(Tag.DUPLICATE, ids)`` for repeated
    source texts and ``(Tag.ORPHAN, ids)`` for target ids no source id has, as they are found.

    ``ordered``: the source's ObjectId texts, ascending across batches. ``others``: every other
    source text (in any order, all of them). ``target``: the target's texts, hex ones ascending,
    others anywhere. :class:`OutOfOrder` as soon as either order is broken.
    """
    extra, side = _others(others, counts)
    if side:
        yield Tag.DUPLICATE, side
    rows, matched = _Window(target), set[str]()
    last = ""
    for read in ordered:
        batch, repeated = _ascending(read, last, extra)
        counts.source += len(batch) + len(repeated)
        counts.duplicate += len(repeated)
        if repeated:
            yield Tag.DUPLICATE, repeated
        if not batch:
            continue
        last = batch[-1]
        for before in rows.below(batch[0]):  # no source id is left for these
            yield from _orphans(before, extra, matched, counts)
        window = rows.upto(last)
        missing = [text for text in batch if text not in window]
        window.difference_update(batch)
        counts.present += len(batch) - len(missing)
        counts.missing += len(missing)
        if missing:
            yield Tag.MISSING, missing
        yield from _orphans(window, extra, matched, counts)
    for rest in rows.below(None):
        yield from _orphans(rest, extra, matched, counts)
    yield from _settle(extra, matched | rows.unordered, counts)


def _others(texts: Iterable[str], counts: DiffCounts) -> tuple[set[str], list[str]]:
    """The source's unordered texts as a set, and those that repeat an earlier one."""
    extra: set[str] = set()
    repeated: list[str] = []
    for text in texts:
        counts.source += 1
        if text in extra:
            counts.duplicate += 1
            repeated.append(text)
        extra.add(text)
    return extra, repeated


def _ascending(batch: list[str], last: str, extra: set[str]) -> tuple[list[str], list[str]]:
    """``batch`` without repeats (of an earlier ObjectId or of an unordered source text), and
    the repeats; :class:`OutOfOrder` if it goes backwards."""
    if not batch:
        return [], []
    if batch[0] > last and _rising(batch) and extra.isdisjoint(batch):
        return batch, []  # the usual batch: a few C-level passes
    kept: list[str] = []
    repeated: list[str] = []
    for text in batch:
        if text < last:
            raise OutOfOrder(f"source ids went backwards: {text} after {last}")
        if text == last or text in extra:
            repeated.append(text)
            continue
        kept.append(text)
        last = text
    return kept, repeated


def _rising(texts: list[str]) -> bool:
    """Whether ``texts`` ascend strictly (sorted and distinct: two C-level passes)."""
    return texts == sorted(texts) and len(set(texts)) == len(texts)


_OID_LINES = re.compile(r"(?:[0-9a-f]{24}\n)*")


def _all_oid_texts(texts: list[str]) -> bool:
    """Whether every text is 24 lowercase hex digits (one regular expression over them all)."""
    lines = "\n".join(texts) + "\n"  # one line per text only if none holds a line break:
    return len(lines) == 25 * len(texts) and _OID_LINES.fullmatch(lines) is not None


def _orphans(
    window: set[str], extra: set[str], matched: set[str], counts: DiffCounts
) -> Iterator[tuple[Tag, list[str]]]:
    """Target ids no ordered source id took: those an unordered source text has are matched
    (a string `_id` spelt like an ObjectId), the rest are orphans."""
    found = window & extra
    matched |= found
    if orphans := sorted(window - found):
        counts.orphans += len(orphans)
        yield Tag.ORPHAN, orphans


def _settle(
    extra: set[str], stored: set[str], counts: DiffCounts
) -> Iterator[tuple[Tag, list[str]]]:
    """The unordered source texts against every target text that was not in the order."""
    missing = sorted(extra - stored)
    counts.present += len(extra) - len(missing)
    counts.missing += len(missing)
    if missing:
        yield Tag.MISSING, missing
    orphans = sorted(stored - extra)
    counts.orphans += len(orphans)
    if orphans:
        yield Tag.ORPHAN, orphans


class _Window:
    """The target's stream, handed out in ascending slices."""

    def __init__(self, target: Iterable[list[str]]) -> None:
        self._batches = iter(target)
        self._pending: list[str] = []  # hex ids read, not handed out yet, ascending
        self._last = ""
        self._done = False
        self.unordered: set[str] = set()
        """Target texts outside the order (not canonical hex): compared at the end."""

    def below(self, bound: str | None) -> Iterator[set[str]]:
        """The ids under ``bound`` (every one left, for None), a read batch at a time: memory
        stays at one batch however many there are."""
        while True:
            cut = len(self._pending) if bound is None else bisect_left(self._pending, bound)
            if cut:
                yield set(self._pending[:cut])
                del self._pending[:cut]
            if self._pending or not self._pull():
                return

    def upto(self, bound: str) -> set[str]:
        """Every id not above ``bound`` not handed out before (the ids of one source batch's
        span: as many as the target holds there)."""
        taken: set[str] = set()
        while True:
            cut = bisect_right(self._pending, bound)
            taken.update(self._pending[:cut])
            del self._pending[:cut]
            if self._pending or not self._pull():
                return taken

    def _pull(self) -> bool:
        """Read one more batch; False once the stream is over."""
        batch = None if self._done else next(self._batches, None)
        if batch is None:
            self._done = True
            return False
        if batch and batch[0] > self._last and _all_oid_texts(batch) and _rising(batch):
            self._pending.extend(batch)  # the usual page: C-level passes only
            self._last = batch[-1]
            return True
        for text in batch:
            if not is_oid_text(text):
                self.unordered.add(text)
            elif text < self._last:
                raise OutOfOrder(f"target ids went backwards: {text} after {self._last}")
            elif text != self._last:  # a row stored twice is one id here, as in a set
                self._pending.append(text)
                self._last = text
        return True
