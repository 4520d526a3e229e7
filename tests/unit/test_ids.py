import datetime
import re
import uuid

import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from hypothesis import given
from hypothesis import strategies as st

from idsync.ids import ColumnFit, UnsupportedId
from idsync.mongo.values import describe, encode_id


@given(st.binary(min_size=12, max_size=12))
def test_objectid_is_24_lowercase_hex(raw: bytes) -> None:
    text = encode_id(ObjectId(raw))
    assert text == raw.hex()
    assert re.fullmatch(r"[0-9a-f]{24}", text)


@given(st.text(min_size=1))
def test_strings_are_unchanged(value: str) -> None:
    assert encode_id(value) == value


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integers_are_decimal(value: int) -> None:
    assert encode_id(value) == str(value)
    assert encode_id(Int64(value)) == str(value)
    assert int(encode_id(Int64(value))) == value


@given(st.uuids())
def test_uuid_is_lowercase_dashed(value: uuid.UUID) -> None:
    assert encode_id(value) == str(value)
    assert encode_id(Binary(value.bytes, 4)) == str(value)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", str(value))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1.5, "unsupported type: double"),
        (1.0, "unsupported type: double"),
        (True, "unsupported type: bool"),
        (None, "unsupported type: null"),
        ({"a": 1}, "unsupported type: document"),
        ([1], "unsupported type: array"),
        (datetime.datetime(2024, 1, 1), "unsupported type: date"),
        (Decimal128("1.5"), "unsupported type: decimal128"),
        (Regex("a"), "unsupported type: regex"),
        (Timestamp(1, 1), "unsupported type: timestamp"),
        (b"\x01\x02", "unsupported type: binary subtype 0"),
        (Binary(b"0123456789abcdef", 3), "unsupported type: binary subtype 3"),
        (Binary(b"short", 4), "unsupported type: binary subtype 4"),
        (MinKey(), "unsupported type: MinKey"),
        (MaxKey(), "unsupported type: MaxKey"),
        (Code("x"), "unsupported type: Code"),
        ("", "empty string"),
    ],
)
def test_everything_else_is_rejected(value: object, reason: str) -> None:
    with pytest.raises(UnsupportedId) as info:
        encode_id(value)
    assert info.value.reason == reason


def test_describe_is_short_and_printable() -> None:
    assert describe("x" * 500).endswith("…(+380 chars)")
    assert describe(1.5) == "double(1.5)"
    oid = ObjectId()
    assert describe(oid) == str(oid)


def test_fit_by_characters() -> None:
    fit = ColumnFit(max_chars=24, max_bytes=None, charset="utf8mb4")
    assert fit.problem("a" * 24) is None
    assert fit.problem("é" * 24) is None
    assert fit.problem("a" * 25) == "too long for column: 25 characters > 24"


def test_fit_by_charset() -> None:
    mb3 = ColumnFit(max_chars=64, max_bytes=None, charset="utf8mb3")
    assert mb3.problem("é☃") is None
    assert mb3.problem("emoji 😀") == "character outside utf8mb3 (4-byte character)"
    ascii_fit = ColumnFit(max_chars=64, max_bytes=None, charset="ascii")
    assert ascii_fit.problem("é") == "character not ASCII"
    latin1 = ColumnFit(max_chars=64, max_bytes=None, charset="latin1")
    assert latin1.problem("café €") is None
    assert latin1.problem("☃") == "character outside latin1"
    unknown = ColumnFit(max_chars=64, max_bytes=None, charset="koi8r")
    assert unknown.problem("☃") is None  # left to the server's strict mode


def test_fit_by_bytes() -> None:
    fit = ColumnFit(max_chars=None, max_bytes=4, charset=None)
    assert fit.problem("abcd") is None
    assert fit.problem("abcé") == "too long for column: 5 bytes > 4"
