"""Raw BSON batches as a server may send them: every BSON type, values the driver cannot decode
(strings that are not UTF-8, dates outside years 1-9999), fields in any order. Splitting never
raises, and every document ends as exactly one ObjectId text, other value or rejected id."""

from __future__ import annotations

import datetime
import struct
import uuid
from collections import Counter
from typing import Any

import bson
from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from hypothesis import given, settings
from hypothesis import strategies as st

from idsync.ids import ColumnFit, UnsupportedId
from idsync.mongo.raw import field_batch, split_batch
from idsync.mongo.values import encode_batch, encode_id

_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
_FIT = ColumnFit(max_chars=None, max_bytes=None, charset="utf8mb4")
_DATE_10000 = 253_402_300_800_000  # 10000-01-01 in ms since the epoch: one past the last year
_BEFORE_YEAR_1 = -62_135_596_800_001


def _document(elements: list[bytes]) -> bytes:
    body = b"".join(elements)
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def _cstring(text: str) -> bytes:
    return text.encode() + b"\x00"


def _element(key: str, value: object) -> bytes:
    """One element as bson encodes ``{key: value}``."""
    return bson.encode({key: value}, codec_options=_CODEC)[4:-1]


def _bad_string(key: str, raw: bytes, kind: int = 0x02) -> bytes:
    """A string (or JavaScript code, or symbol) element whose bytes are not UTF-8."""
    return bytes([kind]) + _cstring(key) + struct.pack("<i", len(raw) + 1) + raw + b"\x00"


def _date(key: str, ms: int) -> bytes:
    return b"\x09" + _cstring(key) + struct.pack("<q", ms)


def _legacy(key: str, kind: int, payload: bytes) -> bytes:
    """Deprecated types bson will not write: undefined (6), DBPointer (12), symbol (14)."""
    return bytes([kind]) + _cstring(key) + payload


# Every BSON type the driver writes, plus the deprecated ones it only reads.
_values = st.one_of(
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
    st.booleans(),
    st.none(),
    st.binary(min_size=12, max_size=12).map(ObjectId),
    st.uuids(),
    st.tuples(st.sampled_from([0, 1, 2, 3, 5, 6, 0x80]), st.binary(max_size=16)).map(
        lambda p: Binary(p[1], p[0]) if p[0] != 3 or len(p[1]) == 16 else Binary(p[1], 0)
    ),
    st.datetimes(timezones=st.just(datetime.UTC)).map(lambda d: d.replace(microsecond=0)),
    st.just(Decimal128("1.5")),
    st.builds(Regex, st.text(alphabet="ab.*", max_size=4)),
    st.builds(Timestamp, st.integers(0, 2**31), st.integers(0, 2**31)),
    st.just(Code("f()")),
    st.just(Code("f()", {"x": 1})),
    st.just(DBRef("c", 1)),
    st.just(MinKey()),
    st.just(MaxKey()),
    st.dictionaries(st.text(alphabet="ab", min_size=1, max_size=2), st.integers(-5, 5), max_size=2),
)


@st.composite
def _valid_element(draw: st.DrawFn, key: str) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(
            st.sampled_from(
                [
                    _legacy(key, 0x06, b""),
                    _legacy(key, 0x0E, struct.pack("<i", 4) + b"sym\x00"),
                    _legacy(key, 0x0C, struct.pack("<i", 2) + b"c\x00" + b"\x01" * 12),
                ]
            )
        )
    value = draw(st.one_of(_values, st.lists(_values, max_size=3)))
    return _element(key, value)


@st.composite
def _bad_element(draw: st.DrawFn, key: str) -> bytes:
    raw = draw(st.sampled_from([b"\xff", b"a\xfeb", b"\xc3", b"\xed\xa0\x80", b"\x80abc"]))
    kind = draw(st.sampled_from([0x02, 0x0D, 0x0E]))
    late = _DATE_10000 + draw(st.integers(0, 2**40))
    early = _BEFORE_YEAR_1 - draw(st.integers(0, 2**40))
    shape = draw(st.sampled_from(["string", "late", "early"]))

    def make(name: str) -> bytes:
        if shape == "string":
            return _bad_string(name, raw, kind)
        return _date(name, late if shape == "late" else early)

    where = draw(st.sampled_from(["here", "array", "document"]))
    if where == "here":
        return make(key)
    # Deep inside a value: an array's element, or a field of a sub-document.
    inner = _document([_element("0", 1), make("1")] if where == "array" else [make("x")])
    return (b"\x04" if where == "array" else b"\x03") + _cstring(key) + inner


@st.composite
def _documents(draw: st.DrawFn, key: str) -> tuple[bytes, bool]:
    """One raw document with ``key`` somewhere (or not at all) among other fields, and whether
    it holds a value that cannot be decoded."""
    names = draw(st.lists(st.sampled_from(["a", "b", "z"]), max_size=2, unique=True))
    if draw(st.integers(0, 5)) > 0:
        names.insert(draw(st.integers(0, len(names))), key)
    bad: set[str] = set()
    if draw(st.booleans()) and names:
        bad = draw(st.sets(st.sampled_from(names), min_size=1))
    elements = [draw(_bad_element(n) if n in bad else _valid_element(n)) for n in names]
    return _document(elements), bool(bad)


_object_id_docs = st.binary(min_size=12, max_size=12).map(
    lambda b: (bson.encode({"_id": ObjectId(b)}), False)
)


def _expected(raw: bytes, bad: bool) -> str | tuple[str, str]:
    """What one ``{_id}`` document must become: its text, or ("rejected", reason)."""
    if bad:
        return ("rejected", "undecodable value")
    try:
        return encode_id(bson.decode(raw, _CODEC).get("_id"))
    except UnsupportedId as exc:
        return ("rejected", exc.reason)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_object_id_docs, _documents("_id")), max_size=12))
def test_every_document_of_a_batch_is_one_id_or_one_rejection(
    docs: list[tuple[bytes, bool]],
) -> None:
    batch = b"".join(raw for raw, _bad in docs)
    oids, others = split_batch(batch)  # never raises
    assert len(oids) + len(others) == len(docs)
    rejected: list[tuple[str, str]] = []
    texts = encode_batch(oids, others, _FIT, lambda shown, why: rejected.append((shown, why)))
    assert all(why for _shown, why in rejected)
    got = Counter([*texts, *(("rejected", why.split(":")[0]) for _shown, why in rejected)])
    want = Counter(
        e if isinstance(e, str) else (e[0], e[1].split(":")[0])
        for e in (_expected(raw, bad) for raw, bad in docs)
    )
    assert got == want


@settings(max_examples=200, deadline=None)
@given(st.lists(_documents("f"), max_size=10))
def test_every_value_of_a_field_is_read_or_its_document_rejected(
    docs: list[tuple[bytes, bool]],
) -> None:
    values = field_batch(b"".join(raw for raw, _bad in docs), ["f"])  # never raises
    want: list[object] = []
    for raw, bad in docs:
        if bad:
            want.append("undecodable")
            continue
        found = bson.decode(raw, _CODEC).get("f")
        items = found if isinstance(found, list) else [found]
        want += [v for v in items if v is not None]
    got = ["undecodable" if type(v).__name__ == "Undecodable" else v for v in values]
    assert got == want


def test_a_string_id_that_is_not_utf8_is_rejected_with_its_bytes_and_the_rest_read() -> None:
    good = [ObjectId(), "after", uuid.uuid4()]
    batch = _document([_bad_string("_id", b"ab\xffcd")]) + b"".join(
        bson.encode({"_id": v}, codec_options=_CODEC) for v in good
    )
    oids, others = split_batch(batch)
    rejected: list[tuple[str, str]] = []
    texts = encode_batch(oids, others, _FIT, lambda shown, why: rejected.append((shown, why)))
    assert texts == [str(v) for v in good]
    [(shown, why)] = rejected
    assert why == "undecodable value: string is not valid UTF-8"
    assert "6162ff6364" in shown  # the raw bytes, in hex


def test_a_date_id_outside_years_1_to_9999_is_rejected() -> None:
    oids, others = split_batch(_document([_date("_id", _DATE_10000)]) + bson.encode({"_id": 7}))
    rejected: list[tuple[str, str]] = []
    texts = encode_batch(oids, others, _FIT, lambda shown, why: rejected.append((shown, why)))
    assert texts == ["7"]
    assert [why for _s, why in rejected] == ["undecodable value: date outside years 1-9999"]


def test_a_string_decoded_with_its_bad_bytes_escaped_is_rejected_printably() -> None:
    # What a change stream event holds for a string that is not UTF-8.
    escaped = b"ab\xffcd".decode("utf-8", "surrogateescape")
    try:
        encode_id(escaped)
    except UnsupportedId as exc:
        assert exc.reason == "undecodable value: string is not valid UTF-8"
        assert "6162ff6364" in exc.shown and exc.shown.isascii()
    else:
        raise AssertionError("accepted a string that is not UTF-8")
