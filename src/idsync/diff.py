"""The pure core: compare a stream of source ids with the set of target ids.

No I/O here. The source is streamed once, in any order; the target is a set in memory. Every id
ends up in exactly one of two sets (still unmatched target ids, or ids already accounted for), so
memory holds the union of both sides once, never a copy of either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class Tag(StrEnum):
    """What a yielded id is. The signs are reladiff's for a diff of (source, target): ``-`` only
    in the first, ``+`` only in the second."""

    MISSING = "-"
    """In the source, not in the target: to insert."""
    ORPHAN = "+"
    """In the target, not in the source: reported only, never deleted."""
    DUPLICATE = "="
    """A second source id with the same text as an earlier one (e.g. int 5 and string "5")."""


@dataclass
class DiffCounts:
    """Running totals; final once the diff generator is exhausted."""

    source: int = 0
    """Source ids read (after encoding)."""
    present: int = 0
    """Distinct source ids already in the target."""
    missing: int = 0
    """Distinct source ids not in the target."""
    duplicate: int = 0
    """Source ids whose text an earlier source id already had."""
    orphans: int = 0
    """Target ids no source id matched."""


def diff_ids(
    source: Iterable[str],
    target: set[str],
    counts: DiffCounts,
    *,
    unique_source: bool = True,
) -> Iterator[tuple[Tag, str]]:
    """Yield ``(Tag.MISSING, id)`` as the source streams, then ``(Tag.ORPHAN, id)`` at its end.

    ``target`` is consumed: matched ids move out of it, so after the generator ends it holds
    exactly the orphans. With ``unique_source`` (the source is a key such as ``_id``) a repeated
    text is yielded as ``Tag.DUPLICATE``; otherwise repeats are expected and skipped silently.
    """
    seen: set[str] = set()
    for text in source:
        counts.source += 1
        tag = _classify(text, target, seen, counts)
        if tag is Tag.MISSING or (tag is Tag.DUPLICATE and unique_source):
            yield tag, text
    counts.orphans = len(target)
    for text in target:
        yield Tag.ORPHAN, text


def diff_batches(
    batches: Iterable[list[str]],
    target: set[str],
    counts: DiffCounts,
    *,
    unique_source: bool = True,
) -> Iterator[tuple[Tag, list[str]]]:
    """:func:`diff_ids` a batch at a time: each yield is a tag and its ids, in source order.

    The same ids come out, tagged the same, however the source is cut; a batch whose ids are
    all new and distinct (the usual one) costs a few set operations instead of a Python step
    per id.
    """
    seen: set[str] = set()
    for batch in batches:
        counts.source += len(batch)
        if _distinct_and_new(batch, seen):
            missing = [text for text in batch if text not in target] if target else batch
            target.difference_update(batch)
            counts.present += len(batch) - len(missing)
            counts.missing += len(missing)
            if missing:
                yield Tag.MISSING, missing
            continue
        tagged: dict[Tag, list[str]] = {Tag.MISSING: [], Tag.DUPLICATE: []}
        for text in batch:
            tag = _classify(text, target, seen, counts)
            if tag is Tag.MISSING or (tag is Tag.DUPLICATE and unique_source):
                tagged[tag].append(text)
        yield from ((tag, texts) for tag, texts in tagged.items() if texts)
    counts.orphans = len(target)
    if target:
        yield Tag.ORPHAN, list(target)


def _classify(text: str, target: set[str], seen: set[str], counts: DiffCounts) -> Tag | None:
    """Account for one source id: MISSING, DUPLICATE, or None when the target has it."""
    if text in seen:
        counts.duplicate += 1
        return Tag.DUPLICATE
    seen.add(text)
    if text in target:
        target.remove(text)
        counts.present += 1
        return None
    counts.missing += 1
    return Tag.MISSING


def _distinct_and_new(batch: list[str], seen: set[str]) -> bool:
    """Add ``batch`` to ``seen`` if none of its ids repeats (within it or from earlier);
    otherwise leave ``seen`` as it was and say so."""
    if not seen.isdisjoint(batch):
        return False
    before = len(seen)
    seen.update(batch)
    if len(seen) - before == len(batch):
        return True
    seen.difference_update(batch)  # none of them was there before: this restores ``seen``
    return False
