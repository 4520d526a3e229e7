"""The bucket walk on in-memory sides: what it finds, what it reads, what counts cannot see."""
# The servers compute the same checksums: tests/integration/test_check.py compares them.

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from idsync.check.buckets import (
    COARSE_LEVEL,
    Difference,
    SortedIds,
    Walk,
    WalkFigures,
    _is_prime,
    choose_level,
    differences,
    draw_moduli,
)
from idsync.diff import DiffCounts, Tag, diff_ids
from idsync.ids import NOTHING, PRIMES, Summary, checksums, is_oid_text, next_prefix, prefix_bounds

hex_ids = st.text(alphabet="0123456789abcdef", min_size=24, max_size=24)


class Counting(SortedIds):
    """A side that counts what the walk asks of it."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__(texts)
        self.counted = 0
        self.read = 0

    def summaries(self, prefix: str, length: int) -> dict[str, Summary]:
        self.counted += 1
        return super().summaries(prefix, length)

    def ids(self, prefix: str) -> Iterator[str]:
        found = list(super().ids(prefix))
        self.read += len(found)
        return iter(found)


def walk(source: list[str], target: list[str], **kw: int) -> tuple[set[str], set[str], Counting]:
    """Run a whole walk; return (missing, orphans) and the target side."""
    src, tgt = Counting(source), Counting(target)
    missing: set[str] = set()
    orphans: set[str] = set()

    def leaf(bucket: Difference) -> None:
        wanted = set(tgt.ids(bucket.prefix))
        for tag, text in diff_ids(src.ids(bucket.prefix), wanted, DiffCounts()):
            (missing if tag is Tag.MISSING else orphans).add(text)

    runner = Walk(src, tgt, leaf, **kw)
    figures = WalkFigures()
    for bucket in runner.top(figures):
        runner.descend(bucket, figures)
    return missing, orphans, tgt


def test_shape() -> None:
    assert is_oid_text("65a0b1c2d3e4f5a6b7c8d9e0")
    assert not is_oid_text("65A0B1C2D3E4F5A6B7C8D9E0")
    assert not is_oid_text("65a0b1c2d3e4f5a6b7c8d9e")
    assert not is_oid_text("65a0b1c2d3e4f5a6b7c8d9e0 ")


def test_prefix_bounds() -> None:
    assert next_prefix("") is None
    assert next_prefix("6f") == "70"
    assert next_prefix("0ff") == "100"
    assert next_prefix("ff") is None
    assert prefix_bounds("65a") == ("65a" + "0" * 21, "65b" + "0" * 21)
    assert prefix_bounds("f") == ("f" + "0" * 23, None)


@given(st.text(alphabet="0123456789abcdef", max_size=6), hex_ids)
def test_bounds_hold_exactly_the_prefix(prefix: str, text: str) -> None:
    low, high = prefix_bounds(prefix)
    inside = low <= text and (high is None or text < high)
    assert inside == text.startswith(prefix)


def test_choose_level_aims_at_the_bucket_size() -> None:
    assert choose_level({}, 1000, COARSE_LEVEL) == COARSE_LEVEL
    assert choose_level({"6553": 900}, 1000, 4) == 4
    assert choose_level({"6553": 65_536}, 1000, 4) == 6  # 65,536 / 16 / 16 = 256
    # a dense month and sparse years: the dense buckets decide (weighted by ids)
    sparse = {f"{i:04x}": 3 for i in range(2000)}
    assert choose_level({**sparse, "6553": 100_000}, 1000, 4) == 6


def test_differences() -> None:
    one, two, three = Summary(1, 5, 6), Summary(2, 7, 8), Summary(3, 9, 9)
    assert differences({"a": one, "b": two, "d": two}, {"b": three, "c": one, "d": two}) == [
        Difference("a", 1, 0),
        Difference("b", 2, 3),
        Difference("c", 0, 1),
    ]
    # Equal counts with different checksums differ.
    assert differences({"e": Summary(2, 1, 1)}, {"e": Summary(2, 1, 2)}) == [Difference("e", 2, 2)]


def test_checksums_in_range_and_summed_in_any_order() -> None:
    text = "65a0b1c2d3e4f5a6b7c8d9e0"
    value = int(text, 16)
    assert checksums(text) == tuple((value % p) ** 2 % p for p in PRIMES)
    assert all(0 <= c < 2**26 for c in checksums(text))
    ids = [f"{i:024x}" for i in range(0, 5000, 7)]
    forward = SortedIds(ids).summaries("", 1)
    assert forward == SortedIds(reversed(ids)).summaries("", 1)
    assert sum(s.size for s in forward.values()) == len(ids)
    assert NOTHING.plus(forward["0"]) == forward["0"]


@settings(max_examples=60, deadline=None)
@given(st.sets(hex_ids, max_size=300), st.sets(hex_ids, max_size=300))
def test_walk_finds_every_difference(a: set[str], b: set[str]) -> None:
    """A walk of any two sets finds what the exact diff finds, missing ids and orphans in the
    same buckets included."""
    missing, orphans, _target = walk(sorted(a), sorted(b), bucket_ids=4, leaf_ids=2)
    assert (missing, orphans) == (a - b, b - a)


@settings(max_examples=60, deadline=None)
@given(st.lists(hex_ids, min_size=1, max_size=200, unique=True), st.data())
def test_swaps_close_to_each_other_are_found(ids: list[str], data: st.DataObject) -> None:
    """Ids swapped for near neighbours (one counter step away, as in a burst) keep every count;
    the checksums still tell the buckets apart."""
    ids = sorted(ids)
    swapped = set(ids)
    for text in data.draw(st.lists(st.sampled_from(ids), max_size=4, unique=True)):
        step = data.draw(st.sampled_from([1, -1, 2, 16, 2**32]))
        near = f"{(int(text, 16) + step) % 2**96:024x}"
        if near not in swapped:
            swapped.discard(text)
            swapped.add(near)
    missing, orphans, _target = walk(ids, sorted(swapped), bucket_ids=50, leaf_ids=10)
    assert (missing, orphans) == (set(ids) - swapped, swapped - set(ids))


def test_in_sync_reads_no_id_and_drift_reads_little() -> None:
    rng = random.Random(5)
    ids = sorted(f"{1_700_000_000 + i:08x}{rng.randbytes(8).hex()}" for i in range(100_000))
    missing, orphans, target = walk(ids, ids)
    assert (missing, orphans, target.read) == (set(), set(), 0)
    planted = rng.sample(ids, 10)
    extra = [f"{1_700_000_000 + i * 9999:08x}" + "f" * 16 for i in range(10)]
    missing, orphans, target = walk(ids, sorted(set(ids) - set(planted)) + extra)
    assert (missing, orphans) == (set(planted), set(extra))
    assert target.read < 0.01 * len(ids)


def test_missing_and_orphan_in_one_bucket_are_found() -> None:
    ids = [f"{1_700_000_000 + i:08x}" + "0" * 16 for i in range(5000)]
    swapped = [*ids[:-1], ids[-1][:-1] + "1"]
    missing, orphans, _ = walk(ids, swapped)
    assert (missing, orphans) == ({ids[-1]}, {swapped[-1]})


def test_a_duplicated_row_never_makes_up_for_a_missing_id() -> None:
    ids = [f"{1_700_000_000 + i:08x}" + "0" * 16 for i in range(5000)]
    src, tgt = SortedIds(ids), SortedIds([*ids[:-1], ids[0]])
    assert src.summaries("", 4) != tgt.summaries("", 4)


def test_each_check_draws_two_distinct_primes_below_2_26() -> None:
    for _ in range(20):
        first, second = draw_moduli()
        assert first != second
        for p in (first, second):
            assert 2**25 < p < 2**26
            assert all(p % d for d in range(2, math.isqrt(p) + 1))


def test_the_primality_test_agrees_with_trial_division() -> None:
    def slow(n: int) -> bool:
        return n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1))

    for n in [*range(3, 5000, 2), 67_108_859, 67_108_837, 67_108_863, 3_215_031_749]:
        assert _is_prime(n) == slow(n), n
