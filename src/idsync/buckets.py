"""Compare two sets of ObjectId texts by counts per hex prefix, reading ids only where they differ.

Pure logic, no I/O: each side is a :class:`BucketSide` that can count its ids per prefix and list
the ids under one prefix; the servers implement it (an aggregation on MongoDB, a GROUP BY on MySQL)
and so does :class:`SortedIds`, for a side that had to be read in full.

An ObjectId's canonical text is 24 lowercase hex characters; the first 8 are its creation time in
seconds, so a prefix of ``k`` characters is a bucket of ``16 ** (8 - k)`` seconds (``k <= 8``), and
beyond 8 characters the buckets split the random part evenly. Hex text sorts as the 12 bytes do,
so every prefix is also one contiguous range of ids (:func:`prefix_bounds`), which both servers
find through their index on the id.

The walk: count every bucket at one level on both sides; where the counts differ, count the 16
sub-buckets of that bucket (one level deeper) and go on into those that differ, until a bucket
holds few enough ids to read them from both sides (``leaf_ids``), or one side has none there.
Equal counts are taken as equal contents: a missing id and an orphan in the same bucket cancel
out. Smaller top-level buckets make that less likely; only an exact comparison rules it out.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

OID_CHARS = 24
HEX = "0123456789abcdef"
COARSE_LEVEL = 4
"""Prefix length of the first, coarse count (``16 ** 4`` seconds, about 18 hours a bucket)."""
MAX_LEVEL = 22
"""Deepest top level: ids that one process made in one second differ in their last 6 characters
only (a counter), so a burst of them needs that many to be split into buckets."""

_OID_TEXT = re.compile(r"[0-9a-f]{24}")
OID_TEXT_SQL = "^[0-9a-f]{24}$"
"""The same shape as :func:`is_oid_text`, for a case-sensitive SQL REGEXP."""


def is_oid_text(text: str) -> bool:
    """True for the canonical text of an ObjectId: exactly 24 lowercase hex characters."""
    return len(text) == OID_CHARS and _OID_TEXT.fullmatch(text) is not None


def next_prefix(prefix: str) -> str | None:
    """The prefix right after ``prefix`` among prefixes of its length; None after ``ff…f``."""
    digits = prefix.rstrip("f")
    if not digits:
        return None
    last = HEX.index(digits[-1]) + 1
    return digits[:-1] + HEX[last] + "0" * (len(prefix) - len(digits))


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """``(lo, hi)``: the ids with ``prefix`` are exactly those with ``lo <= id < hi`` (no upper
    bound when ``hi`` is None), comparing 24-character hex texts, or the ObjectIds they spell."""
    following = next_prefix(prefix)
    low = prefix.ljust(OID_CHARS, "0")
    return low, None if following is None else following.ljust(OID_CHARS, "0")


class BucketSide(Protocol):
    """One side of the comparison, restricted to ObjectId texts."""

    def counts(self, prefix: str, length: int) -> dict[str, int]:
        """Ids starting with ``prefix``, counted by their first ``length`` characters
        (``length > len(prefix)``); buckets without ids may be left out."""
        ...

    def ids(self, prefix: str) -> Iterable[str]:
        """Every id starting with ``prefix``, in any order."""
        ...


class SortedIds:
    """A side held in memory as a sorted list: what a server that cannot count is read into."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._texts = sorted(texts)

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, texts: Iterable[str]) -> None:
        """Take in more ids."""
        self._texts.extend(texts)
        self._texts.sort()

    def _span(self, prefix: str) -> tuple[int, int]:
        low, high = prefix_bounds(prefix)
        start = bisect.bisect_left(self._texts, low)
        end = len(self._texts) if high is None else bisect.bisect_left(self._texts, high)
        return start, end

    def counts(self, prefix: str, length: int) -> dict[str, int]:
        start, end = self._span(prefix)
        found: dict[str, int] = {}
        for text in self._texts[start:end]:
            key = text[:length]
            found[key] = found.get(key, 0) + 1
        return found

    def ids(self, prefix: str) -> Iterator[str]:
        start, end = self._span(prefix)
        return iter(self._texts[start:end])


class Combined:
    """Two sides seen as one: the server's ObjectIds plus, say, string ids with the same shape."""

    def __init__(self, first: BucketSide, second: SortedIds) -> None:
        self.first, self.second = first, second

    def counts(self, prefix: str, length: int) -> dict[str, int]:
        found = self.first.counts(prefix, length)
        if len(self.second):
            for key, count in self.second.counts(prefix, length).items():
                found[key] = found.get(key, 0) + count
        return found

    def ids(self, prefix: str) -> Iterator[str]:
        yield from self.first.ids(prefix)
        yield from self.second.ids(prefix)


@dataclass(frozen=True)
class Difference:
    """A bucket whose counts differ."""

    prefix: str
    source: int
    target: int


def _merged(source: Mapping[str, int], target: Mapping[str, int]) -> dict[str, int]:
    return {
        key: max(source.get(key, 0), target.get(key, 0)) for key in source.keys() | target.keys()
    }


def differences(source: Mapping[str, int], target: Mapping[str, int]) -> list[Difference]:
    """Buckets whose counts differ, in prefix order (a bucket absent on one side counts 0)."""
    keys = sorted(source.keys() | target.keys())
    return [
        Difference(key, source.get(key, 0), target.get(key, 0))
        for key in keys
        if source.get(key, 0) != target.get(key, 0)
    ]


def choose_level(coarse: Mapping[str, int], bucket_ids: int, coarse_level: int) -> int:
    """The prefix length at which buckets hold about ``bucket_ids`` ids.

    ``coarse`` are the counts at ``coarse_level``. The size that matters is the one of the bucket
    a typical id is in (weighted by ids, so a few sparse years do not hide a dense month); each
    further character divides a bucket by 16.
    """
    total = sum(coarse.values())
    if not total:
        return coarse_level
    typical = sum(count * count for count in coarse.values()) / total
    if typical <= bucket_ids:
        return coarse_level
    extra = math.ceil(math.log(typical / bucket_ids, 16))
    return min(coarse_level + extra, MAX_LEVEL)


@dataclass
class WalkFigures:
    """What a walk did."""

    level: int = COARSE_LEVEL
    """Prefix length of the top-level buckets."""
    compared: int = 0
    """Top-level buckets compared (holding ids on either side)."""
    differing: int = 0
    """Top-level buckets whose counts differ."""
    split: int = 0
    """Differing buckets counted again one level deeper."""
    read: int = 0
    """Buckets whose ids were read from both sides and compared one by one."""
    source_ids: int = 0
    """Ids on the source side, by the top-level counts."""
    target_ids: int = 0
    """Ids on the target side, by the top-level counts."""
    at_stake: int = 0
    """Ids in the top-level buckets that differ (the larger side of each)."""


Leaf = Callable[[Difference], None]
"""Reads both sides' ids in a bucket (skipping a side whose count is 0) and compares them."""


@dataclass(frozen=True)
class Walk:
    """Counts per bucket on both sides, then the differing buckets split and read."""

    source: BucketSide
    target: BucketSide
    leaf: Leaf
    bucket_ids: int = 1000
    """About how many ids a top-level bucket should hold."""
    leaf_ids: int = 100
    """A differing bucket with at most this many ids on each side is read, not split."""

    def top(self, figures: WalkFigures) -> list[Difference]:
        """Count both sides at the shallowest level where buckets hold about ``bucket_ids`` ids
        (:func:`choose_level` guesses it from coarse counts; ids made in a burst by one process
        share more characters than a guess assumes, and a binary search finds the level then);
        return the buckets that differ. Every level tried costs one count per side."""
        tried: dict[int, tuple[dict[str, int], dict[str, int], int]] = {}

        def fits(level: int) -> bool:
            on_source, on_target = self.source.counts("", level), self.target.counts("", level)
            merged = _merged(on_source, on_target)
            tried[level] = on_source, on_target, len(merged)
            return choose_level(merged, self.bucket_ids, level) == level

        level = COARSE_LEVEL
        if not fits(level):
            level = choose_level(_merged(*tried[level][:2]), self.bucket_ids, level)
            if not fits(level):
                low, high = level, MAX_LEVEL
                while high - low > 1:
                    middle = (low + high) // 2
                    low, high = (low, middle) if fits(middle) else (middle, high)
                level = high
                if level not in tried:
                    fits(level)
        on_source, on_target, compared = tried[level]
        found = differences(on_source, on_target)
        figures.level, figures.compared, figures.differing = level, compared, len(found)
        figures.source_ids, figures.target_ids = sum(on_source.values()), sum(on_target.values())
        figures.at_stake = sum(max(d.source, d.target) for d in found)
        return found

    def descend(self, bucket: Difference, figures: WalkFigures) -> None:
        """Find what differs inside one differing bucket."""
        small = max(bucket.source, bucket.target) <= self.leaf_ids
        if small or not bucket.source or not bucket.target or len(bucket.prefix) >= OID_CHARS:
            figures.read += 1
            self.leaf(bucket)
            return
        figures.split += 1
        deeper = len(bucket.prefix) + 1
        below = differences(
            self.source.counts(bucket.prefix, deeper), self.target.counts(bucket.prefix, deeper)
        )
        for child in below:
            self.descend(child, figures)
