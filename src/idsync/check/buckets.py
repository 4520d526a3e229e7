"""Compare two sets of ObjectId texts by a summary per hex prefix; read ids only where they differ.

Pure logic, no I/O: each side is a :class:`BucketSide` that can summarise its ids per prefix (a
count and a checksum, :class:`Summary`) and list the ids under one prefix; the servers implement
it (an aggregation on MongoDB, a GROUP BY on MySQL) and so does :class:`SortedIds`, for a side
that had to be read in full.

An ObjectId's canonical text is 24 lowercase hex characters; the first 8 are its creation time in
seconds, so a prefix of ``k`` characters is a bucket of ``16 ** (8 - k)`` seconds (``k <= 8``), and
beyond 8 characters the buckets split the random part evenly. Hex text sorts as the 12 bytes do,
so every prefix is also one contiguous range of ids (:func:`prefix_bounds`), which both servers
find through their index on the id.

The walk: summarise every bucket at one level on both sides; where the summaries differ,
summarise the 16 sub-buckets of that bucket (one level deeper) and go on into those that differ,
until a bucket holds few enough ids to read them from both sides (``leaf_ids``), or one side has
none there. Equal counts alone would prove nothing (a missing id and an orphan, or a missing id
and a duplicated row, leave them equal); the checksum is what makes equal summaries mean equal
contents, up to a collision of two independent 26-bit checksums (:func:`checksums`).
"""

from __future__ import annotations

import bisect
import math
import secrets
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Protocol

from idsync.ids import (
    NOTHING,
    OID_CHARS,
    PRIMES,
    Summary,
    checksums,
    prefix_bounds,
)

COARSE_LEVEL = 4
"""Prefix length of the first, coarse count (``16 ** 4`` seconds, about 18 hours a bucket)."""
MAX_LEVEL = 22
"""Deepest top level: ids that one process made in one second differ in their last 6 characters
only (a counter), so a burst of them needs that many to be split into buckets."""

_LOW, _HIGH = 2**25, 2**26


def draw_moduli() -> tuple[int, int]:
    """Two distinct primes between 2**25 and 2**26, drawn at random for one check.

    Below 2**26, every step of the checksums stays below 2**53, so a server computing in doubles
    gets the same integers as one using longs. Drawn, not fixed: two ids share a checksum only
    when the modulus divides their difference or their sum (numbers below 2**97, with at most
    three prime factors in that range, among about 1.8 million primes there), so no id can be
    made to hide another from a check it cannot foresee (about 1 in 10**11 for both at once)."""
    rng = secrets.SystemRandom()
    found: list[int] = []
    while len(found) < 2:
        candidate = rng.randrange(_LOW + 1, _HIGH, 2)
        if candidate not in found and _is_prime(candidate):
            found.append(candidate)
    return found[0], found[1]


def _is_prime(n: int) -> bool:
    """Miller-Rabin with bases 2, 3, 5, 7: exact for every n below 3,215,031,751."""
    for base in (2, 3, 5, 7):
        if n % base == 0:
            return n == base
    if n < 2:
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for base in (2, 3, 5, 7):
        x = pow(base, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


class BucketSide(Protocol):
    """One side of the comparison, restricted to ObjectId texts."""

    def summaries(self, prefix: str, length: int) -> dict[str, Summary]:
        """Ids starting with ``prefix``, summarised by their first ``length`` characters
        (``length > len(prefix)``); buckets without ids may be left out."""
        ...

    def ids(self, prefix: str) -> Iterable[str]:
        """Every id starting with ``prefix``, in any order."""
        ...


class SortedIds:
    """A side held in memory as a sorted list: what a server that cannot count is read into."""

    def __init__(self, texts: Iterable[str] = (), moduli: tuple[int, int] = PRIMES) -> None:
        self._texts = sorted(texts)
        self._moduli = moduli
        self._sums: tuple[array[int], array[int]] | None = None

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, texts: Iterable[str]) -> None:
        """Take in more ids."""
        self._texts.extend(texts)
        self._texts.sort()
        self._sums = None

    def drop_repeats(self) -> list[str]:
        """Keep one of each text; return the others (one source id per text, as a run stores)."""
        kept = [text for text, _run in groupby(self._texts)]
        if len(kept) == len(self._texts):
            return []
        dropped = list((Counter(self._texts) - Counter(kept)).elements())
        self._texts, self._sums = kept, None
        return dropped

    def _span(self, prefix: str) -> tuple[int, int]:
        low, high = prefix_bounds(prefix)
        start = bisect.bisect_left(self._texts, low)
        end = len(self._texts) if high is None else bisect.bisect_left(self._texts, high)
        return start, end

    def summaries(self, prefix: str, length: int) -> dict[str, Summary]:
        start, end = self._span(prefix)
        if self._sums is None:  # once per set of ids, not once per level tried; 16 bytes an id
            pairs = (checksums(text, self._moduli) for text in self._texts)
            self._sums = array("q"), array("q")
            for first, second in pairs:
                self._sums[0].append(first)
                self._sums[1].append(second)
        firsts, seconds = self._sums
        found: dict[str, Summary] = {}
        for key, run in groupby(range(start, end), key=lambda i: self._texts[i][:length]):
            rows = list(run)
            low, high = rows[0], rows[-1] + 1
            found[key] = Summary(len(rows), sum(firsts[low:high]), sum(seconds[low:high]))
        return found

    def ids(self, prefix: str) -> Iterator[str]:
        start, end = self._span(prefix)
        return iter(self._texts[start:end])


@dataclass(frozen=True)
class Difference:
    """A bucket whose summaries differ, with each side's count of ids in it."""

    prefix: str
    source: int
    target: int


Summaries = Mapping[str, Summary]


def _merged(source: Summaries, target: Summaries) -> dict[str, int]:
    return {
        key: max(source.get(key, NOTHING).size, target.get(key, NOTHING).size)
        for key in source.keys() | target.keys()
    }


def differences(source: Summaries, target: Summaries) -> list[Difference]:
    """Buckets whose summaries differ, in prefix order (a bucket absent on one side is empty)."""
    keys = sorted(source.keys() | target.keys())
    sides = ((key, source.get(key, NOTHING), target.get(key, NOTHING)) for key in keys)
    return [Difference(key, one.size, other.size) for key, one, other in sides if one != other]


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
    """Rows on the target side, by the top-level counts."""
    at_stake: int = 0
    """Ids in the top-level buckets that differ (the larger side of each)."""


Leaf = Callable[[Difference], None]
"""Reads both sides' ids in a bucket (skipping a side whose count is 0) and compares them."""


@dataclass(frozen=True)
class Walk:
    """Summaries per bucket on both sides, then the differing buckets split and read."""

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
        tried: dict[int, tuple[dict[str, Summary], dict[str, Summary], int]] = {}

        def fits(level: int) -> bool:
            on_source = self.source.summaries("", level)
            on_target = self.target.summaries("", level)
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
        figures.source_ids = sum(s.size for s in on_source.values())
        figures.target_ids = sum(s.size for s in on_target.values())
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
            self.source.summaries(bucket.prefix, deeper),
            self.target.summaries(bucket.prefix, deeper),
        )
        for child in below:
            self.descend(child, figures)
