"""One `_id` range of both sides compared a batch at a time: what `run --workers` and
`check --workers` share.

A plan cuts the ObjectIds into ranges by creation time (:func:`idsync.ledger.split`) and adds
one range for every `_id` that is not an ObjectId. An ObjectId range is read in `_id` order; each
source batch is compared with the target's values from the previous batch's last id (excluded)
to this batch's last id (included), so that the windows of a range, and the ranges of a plan,
cover every ObjectId-shaped text of the column exactly once: what is missing, present and
orphaned is counted exactly, with one batch of each side in memory. The rest (few in practice)
is compared as sets, as the merge plan does.

Pure over what it is handed: the callers pass the source's encoded batches and the target's
reads, so that this module imports no driver and no feature.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from idsync.envelope import MAX_SAMPLES
from idsync.errors import InterruptedRun, TerminalError
from idsync.ids import is_oid_text
from idsync.ledger import OBJECT_IDS, OTHERS, Range, split

_C = TypeVar("_C")

LOWEST, HIGHEST = "0" * 24, "f" * 24
"""The first and the last ObjectId text: the bounds of the open ends of a plan."""
RANGES_PER_WORKER = 4
"""Ranges per worker: a worker that ends early takes another, so that one slow range (a burst of
ids created in one stretch of time) does not leave the others idle."""


@dataclass
class Window:
    """What one comparison found."""

    missing: list[str] = field(default_factory=list)
    """Source texts the target lacks, in the source's order."""
    present: int = 0
    orphans: list[str] = field(default_factory=list)
    """Target values that no source id has."""
    duplicates: list[str] = field(default_factory=list)
    """Source texts that another source id has too (ObjectId X and the string X)."""


def plan_ranges(span: tuple[str, str] | None, workers: int) -> list[Range]:
    """The ranges of a run by ``workers``: ObjectIds from ``span``'s first to its last (None: no
    ObjectId, one range), cut by creation time; then the range of every other `_id`, last."""
    bounds = split(*span, workers * RANGES_PER_WORKER) if span else [(None, None)]
    rows = [(OBJECT_IDS, lo, hi) for lo, hi in bounds] + [(OTHERS, None, None)]
    return [Range(0, idx, kind, lo, hi) for idx, (kind, lo, hi) in enumerate(rows)]


def object_id_windows(
    batches: Iterable[list[str]],
    read_between: Callable[[str, str], set[str]],
    part: Range,
    hex_others: frozenset[str] = frozenset(),
) -> Iterator[Window]:
    """Each source batch of ``part`` (texts ascending, as the `_id` index gives them) against
    the target's values in its window; last, the window after the source's last id. A text in
    ``hex_others`` (a string `_id` that is an ObjectId's text) is that range's, not an orphan
    here; an ObjectId of the same text is a duplicate."""
    low, first = part.lo or LOWEST, True  # first: `low` itself belongs to this window
    for texts in batches:
        if not texts:
            continue
        bottom, top = min(texts), max(texts)
        if bottom < low or (bottom == low and not first):
            raise TerminalError(
                f"the source's ObjectIds came out of `_id` order in {part} ({bottom} after"
                f" {low}): the server did not sort as asked; run without --workers"
            )
        yield _window(texts, read_between(low, top), low, first, hex_others)
        low, first = top, False
    high = part.hi
    rest = read_between(low, high or HIGHEST)
    yield _window([], {v for v in rest if v != high}, low, first, hex_others)


def _window(
    texts: list[str], stored: set[str], low: str, first: bool, hex_others: frozenset[str]
) -> Window:
    # `low` without `first` is the previous batch's last id: compared there already.
    shaped = {v for v in stored if is_oid_text(v) and (first or v != low)}
    found = Window()
    if hex_others:
        found.duplicates = [text for text in texts if text in hex_others]
        texts = [text for text in texts if text not in hex_others]
    found.missing = [text for text in texts if text not in shaped]
    found.present = len(texts) - len(found.missing)
    source = set(texts)
    found.orphans = [v for v in shaped if v not in source and v not in hex_others]
    return found


def compare_others(
    texts: Iterable[str], target_rest: Iterable[str], present: Callable[[list[str]], set[str]]
) -> tuple[Window, frozenset[str]]:
    """The `_id`s that are not ObjectIds (their texts, every one in memory: few in practice)
    against the target's values not shaped like an ObjectId's text; those of the source that
    are so shaped (a string `_id` of 24 hex digits) are looked up one batch at a time with
    ``present``, and returned for the ObjectId ranges (:func:`object_id_windows`)."""
    found, seen = Window(), set[str]()
    unique: list[str] = []
    for text in texts:
        if text in seen:
            found.duplicates.append(text)
        else:
            seen.add(text)
            unique.append(text)
    shaped = [text for text in unique if is_oid_text(text)]
    stored = set(target_rest) | (present(shaped) if shaped else set())
    found.missing = [text for text in unique if text not in stored]
    found.present = len(unique) - len(found.missing)
    found.orphans = [v for v in stored if v not in seen]
    return found, frozenset(shaped)


def keep_samples(kept: list[_C], more: list[_C]) -> None:
    """A range's samples after the run's, as many as a report keeps."""
    kept.extend(more[: MAX_SAMPLES - len(kept)])


class Lazy(Generic[_C]):
    """A worker's own connections, opened when first needed and again after a failure."""

    def __init__(self, opener: Callable[[], _C], closer: Callable[[_C], None]) -> None:
        self.opener, self.closer = opener, closer
        self.opened: _C | None = None

    def get(self) -> _C:
        if self.opened is None:
            self.opened = self.opener()
        return self.opened

    def close(self) -> None:
        opened, self.opened = self.opened, None
        if opened is not None:
            self.closer(opened)


class RangePool(Generic[_C]):
    """Ranges from a queue, worked by threads that each hold their own connections."""

    def __init__(
        self,
        stop: threading.Event,
        connections: Callable[[], Lazy[_C]],
        interrupted: Callable[[], InterruptedRun],
    ) -> None:
        self.stop, self.connections, self.interrupted = stop, connections, interrupted
        self.halt = threading.Event()
        """Set by ``stop``, or by a worker's failure: every worker ends after its batch."""

    def work(self, count: int, parts: list[Range], one: Callable[[Range, Lazy[_C]], None]) -> None:
        """``one(part, connections)`` for every part, by ``count`` threads; the first failure
        that is not a worker ended by another's (or by ``stop``) is raised."""
        todo: queue.SimpleQueue[Range] = queue.SimpleQueue()
        for part in parts:
            todo.put(part)
        with ThreadPoolExecutor(count, thread_name_prefix="idsync-range") as pool:
            futures = [pool.submit(self._worker, todo, one) for _ in range(min(count, len(parts)))]
            while wait(futures, timeout=0.2).not_done:
                if self.stop.is_set():
                    self.halt.set()
        errors = [error for future in futures if (error := future.exception()) is not None]
        if self.stop.is_set():
            raise self.interrupted()
        for error in errors:
            if not isinstance(error, InterruptedRun):
                raise error
        if errors:
            raise errors[0]

    def _worker(
        self, todo: queue.SimpleQueue[Range], one: Callable[[Range, Lazy[_C]], None]
    ) -> None:
        connections = self.connections()
        try:
            while not self.halt.is_set():
                try:
                    part = todo.get_nowait()
                except queue.Empty:
                    return
                one(part, connections)
        except BaseException:
            self.halt.set()
            raise
        finally:
            connections.close()
