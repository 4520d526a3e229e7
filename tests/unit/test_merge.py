"""The ordered merge gives what the set diff gives, in memory of one batch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idsync.diff import DiffCounts, Tag, diff_batches
from idsync.merge import OutOfOrder, merge_batches

# Few distinct hex ids, so that both sides share many; texts that are not ObjectId-shaped too.
hex_ids = st.sampled_from([f"{n:024x}" for n in range(0, 40, 3)] + ["ff" * 12, "0a" * 12])
odd = st.sampled_from(
    [
        "5",
        "abc",
        "ABCDEF0123456789ABCDEF01",
        " " + "1" * 23,
        f"{9:024x}",
        "0" * 24 + "\n" + "1" * 24,
    ]
)


def _cut(texts: list[str], size: int) -> list[list[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)] or [[]]


def _result(out: Iterator[tuple[Tag, list[str]]]) -> dict[Tag, list[str]]:
    found: dict[Tag, list[str]] = {tag: [] for tag in Tag}
    for tag, texts in out:
        found[tag].extend(texts)
    return found


@given(
    st.lists(hex_ids),
    st.lists(odd),
    st.lists(st.one_of(hex_ids, odd)),
    st.integers(1, 5),
    st.integers(1, 5),
)
def test_merge_finds_what_the_set_diff_finds(
    oids: list[str], others: list[str], rows: list[str], size: int, rows_size: int
) -> None:
    merged, plain = DiffCounts(), DiffCounts()
    ordered = sorted(oids)
    target = sorted(r for r in rows if len(r) == 24 and r == r.lower() and r.strip() == r)
    target += [r for r in rows if r not in target]  # the unordered ones anywhere: at the end
    got = _result(merge_batches(_cut(ordered, size), others, _cut(target, rows_size), merged))
    want = _result(diff_batches([others, ordered], set(rows), plain))
    assert sorted(got[Tag.MISSING]) == sorted(want[Tag.MISSING])
    assert sorted(got[Tag.ORPHAN]) == sorted(want[Tag.ORPHAN])
    assert len(got[Tag.DUPLICATE]) == len(want[Tag.DUPLICATE])
    assert merged == plain


def test_a_source_going_backwards_is_refused() -> None:
    with pytest.raises(OutOfOrder, match="source ids went backwards"):
        list(merge_batches([["0" * 24, "2" * 24], ["1" * 24]], [], [], DiffCounts()))


def test_a_target_going_backwards_is_refused() -> None:
    target = [["2" * 24], ["1" * 24]]
    with pytest.raises(OutOfOrder, match="target ids went backwards"):
        list(merge_batches([["3" * 24]], [], target, DiffCounts()))


def test_memory_holds_a_window_not_the_table() -> None:
    """Orphans before, between and after the source's ids come out a read batch at a time."""
    source = [f"{n:024x}" for n in range(1000, 2000)]
    rows = [f"{n:024x}" for n in range(0, 3000)]
    sizes: list[int] = []
    for tag, texts in merge_batches(_cut(source, 100), [], _cut(rows, 100), DiffCounts()):
        assert tag is Tag.ORPHAN
        sizes.append(len(texts))
    assert max(sizes) <= 100 and sum(sizes) == 2000
