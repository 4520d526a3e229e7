"""The ranges a round is cut into: every ObjectId in exactly one, whatever comes after the plan."""

from __future__ import annotations

from bson import ObjectId
from hypothesis import given
from hypothesis import strategies as st

from idsync.ledger import split

seconds = st.integers(min_value=0, max_value=2**32 - 1)


def _owner(bounds: list[tuple[str | None, str | None]], text: str) -> list[int]:
    return [
        at for at, (low, high) in enumerate(bounds)
        if (low is None or text >= low) and (high is None or text < high)
    ]  # fmt: skip


@given(
    seconds,
    seconds,
    st.integers(min_value=1, max_value=64),
    st.lists(st.binary(min_size=12, max_size=12)),
)
def test_every_object_id_falls_in_exactly_one_range(
    a: int, b: int, count: int, ids: list[bytes]
) -> None:
    first, last = sorted((a, b))
    bounds = split(f"{first:08x}" + "0" * 16, f"{last:08x}" + "f" * 16, count)
    assert 1 <= len(bounds) <= count
    assert bounds[0][0] is None and bounds[-1][1] is None
    for raw in ids:
        assert len(_owner(bounds, str(ObjectId(raw)))) == 1


def test_ranges_split_the_span_evenly_by_time() -> None:
    bounds = split("00000064" + "0" * 16, "000000c7" + "f" * 16, 4)  # seconds 100 to 199
    cuts = [int(high[:8], 16) for _, high in bounds[:-1] if high]
    assert cuts == [125, 150, 175]


def test_one_second_is_one_range() -> None:
    assert split("65000000" + "0" * 16, "65000000" + "9" * 16, 16) == [(None, None)]
