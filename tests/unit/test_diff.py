from hypothesis import given
from hypothesis import strategies as st

from idsync.diff import DiffCounts, Tag, diff_batches, diff_ids

ids = st.text(alphabet="abc123", min_size=1, max_size=3)


@given(st.lists(ids), st.sets(ids))
def test_diff_partitions_both_sides(source: list[str], target: set[str]) -> None:
    counts = DiffCounts()
    before = set(target)
    out = list(diff_ids(source, target, counts))
    missing = [text for tag, text in out if tag is Tag.MISSING]
    orphans = {text for tag, text in out if tag is Tag.ORPHAN}
    duplicates = [text for tag, text in out if tag is Tag.DUPLICATE]
    distinct = list(dict.fromkeys(source))
    assert missing == [text for text in distinct if text not in before]
    assert orphans == before - set(source)
    assert len(duplicates) == len(source) - len(distinct)
    assert counts.source == len(source)
    assert counts.present == len(set(source) & before)
    assert counts.missing == len(missing)
    assert counts.orphans == len(orphans)
    assert target == orphans  # consumed: what is left is exactly the orphans


@given(st.lists(ids))
def test_repeats_are_silent_for_non_key_fields(source: list[str]) -> None:
    counts = DiffCounts()
    out = list(diff_ids(source, set(), counts, unique_source=False))
    assert [text for _tag, text in out] == list(dict.fromkeys(source))
    assert counts.duplicate == len(source) - len(set(source))


def test_missing_ids_stream_before_the_source_ends() -> None:
    def source() -> object:
        yield "a"
        raise RuntimeError("the rest of the source is not needed to see 'a'")

    gen = diff_ids(source(), set(), DiffCounts())  # type: ignore[arg-type]
    assert next(gen) == (Tag.MISSING, "a")


@given(st.lists(ids), st.sets(ids), st.lists(st.integers(1, 5)), st.booleans())
def test_batches_tag_the_same_ids_however_the_source_is_cut(
    source: list[str], target: set[str], cuts: list[int], unique: bool
) -> None:
    batches, at = [], 0
    for size in [*cuts, len(source)]:
        batches.append(source[at : at + size])
        at += size
    by_id, by_batch = DiffCounts(), DiffCounts()
    expected = list(diff_ids(source, set(target), by_id, unique_source=unique))
    got = [
        (tag, text)
        for tag, texts in diff_batches(batches, set(target), by_batch, unique_source=unique)
        for text in texts
    ]
    key = {Tag.MISSING: 0, Tag.DUPLICATE: 1, Tag.ORPHAN: 2}
    assert [pair for pair in got if pair[0] is Tag.MISSING] == [
        pair for pair in expected if pair[0] is Tag.MISSING
    ]
    assert sorted(got, key=lambda p: (key[p[0]], p[1])) == sorted(
        expected, key=lambda p: (key[p[0]], p[1])
    )
    assert by_batch == by_id
