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
    """What a yielded id is, reladiff-style."""

    MISSING = "+"
    """In the source, not in the target: to insert."""
    ORPHAN = "-"
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
        if text in seen:
            counts.duplicate += 1
            if unique_source:
                yield Tag.DUPLICATE, text
            continue
        seen.add(text)
        if text in target:
            target.remove(text)
            counts.present += 1
        else:
            counts.missing += 1
            yield Tag.MISSING, text
    counts.orphans = len(target)
    for text in target:
        yield Tag.ORPHAN, text
