from hypothesis import given
from hypothesis import strategies as st

from idsync.diff import DiffCounts, Tag, diff_ids

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
