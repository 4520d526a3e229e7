"""The canonical text of a MongoDB id: the one way a BSON value becomes the text SQL stores.

| BSON value              | text                              |
| ----------------------- | --------------------------------- |
| ObjectId                | 24 lowercase hex characters       |
| string (non-empty)      | unchanged                         |
| int32 / int64           | decimal digits, optional ``-``    |
| binary subtype 4 (UUID) | lowercase 8-4-4-4-12              |
| anything else           | rejected: ``unsupported type: …`` |
| undecodable bytes       | rejected: ``undecodable value: …``|

The empty string is rejected too: it is a legal ``_id`` but never a useful reference, the original
job skipped it, and under a PAD SPACE collation it equals any all-spaces id.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bson import Binary, Decimal128, Int64, ObjectId, Regex, Timestamp
from bson.binary import UUID_SUBTYPE
from bson.datetime_ms import DatetimeMS

from idsync.ids import ColumnFit, UnsupportedId, is_utf8

_SAMPLE_CHARS = 120
_BAD_UTF8 = "undecodable value: string is not valid UTF-8"
_BAD_DATE = "undecodable value: date outside years 1-9999"
_RAW_SAMPLE_BYTES = 24


@dataclass(frozen=True)
class Undecodable:
    """A stored value the driver cannot decode (a string that is not UTF-8, a date outside
    years 1-9999): kept as its raw BSON so that it is rejected with a reason, never dropped."""

    reason: str
    raw: bytes

    @property
    def sample(self) -> str:
        """The first raw bytes, in hex: enough to find the document, short enough to print."""
        more = "…" if len(self.raw) > _RAW_SAMPLE_BYTES else ""
        return f"bson({self.raw[:_RAW_SAMPLE_BYTES].hex()}{more})"


def _encode_undecodable(value: Undecodable) -> str:
    raise UnsupportedId(value.reason, value.sample)


def _encode_str(value: str) -> str:
    if not value:
        raise UnsupportedId("empty string")
    if not value.isascii() and not is_utf8(value):
        raise UnsupportedId(_BAD_UTF8, describe(value))
    return value


def _encode_date_ms(_value: DatetimeMS) -> str:
    # Decoded as milliseconds only when outside years 1-9999.
    raise UnsupportedId(_BAD_DATE)


def _encode_int(value: int) -> str:
    return str(int(value))


def _encode_binary(value: Binary) -> str:
    if value.subtype == UUID_SUBTYPE and len(value) == 16:
        return str(uuid.UUID(bytes=bytes(value)))
    raise UnsupportedId(f"unsupported type: binary subtype {value.subtype}")


_ENCODERS: dict[type, Callable[[object], str]] = {
    ObjectId: str,
    str: _encode_str,  # type: ignore[dict-item]
    int: _encode_int,  # type: ignore[dict-item]
    Int64: _encode_int,  # type: ignore[dict-item]
    uuid.UUID: str,
    Binary: _encode_binary,  # type: ignore[dict-item]
    Undecodable: _encode_undecodable,  # type: ignore[dict-item]
    DatetimeMS: _encode_date_ms,  # type: ignore[dict-item]
}

_TYPE_NAMES: dict[type, str] = {
    float: "double",
    bool: "bool",
    type(None): "null",
    dict: "document",
    list: "array",
    datetime.datetime: "date",
    DatetimeMS: "date",
    Decimal128: "decimal128",
    Regex: "regex",
    Timestamp: "timestamp",
    bytes: "binary subtype 0",
}


def encode_id(value: object) -> str:
    """Return the canonical text of ``value`` or raise :class:`UnsupportedId`."""
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        name = _TYPE_NAMES.get(type(value), type(value).__name__)
        raise UnsupportedId(f"unsupported type: {name}")
    return encoder(value)


def describe(value: object) -> str:
    """A short, printable form of a raw id for reports: never the basis of a stored value."""
    if isinstance(value, str):
        text = value if value.isascii() or is_utf8(value) else _escaped_bytes(value)
    elif isinstance(value, ObjectId | uuid.UUID):
        text = str(value)
    elif isinstance(value, Undecodable):
        return value.sample
    else:
        text = f"{_TYPE_NAMES.get(type(value), type(value).__name__)}({value!r})"
    if len(text) > _SAMPLE_CHARS:
        return f"{text[:_SAMPLE_CHARS]}…(+{len(text) - _SAMPLE_CHARS} chars)"
    return text


def _escaped_bytes(text: str) -> str:
    raw = text.encode("utf-8", "surrogateescape")
    more = "…" if len(raw) > _RAW_SAMPLE_BYTES else ""
    return f"bytes({raw[:_RAW_SAMPLE_BYTES].hex()}{more})"


def encode_fitting(value: object, fit: ColumnFit) -> str:
    """The canonical text of ``value`` if ``fit`` holds it exactly, else :class:`UnsupportedId`
    with ``shown`` set: the one gate every id passes before a sync or a check compares it."""
    try:
        text = encode_id(value)
    except UnsupportedId as exc:
        raise UnsupportedId(exc.reason, describe(value)) from None
    problem = fit.problem(text)
    if problem is not None:
        raise UnsupportedId(problem, describe(text))
    return text


def encode_batch(
    oids: list[str],
    others: Iterable[object],
    fit: ColumnFit,
    reject: Callable[[str, str], None],
) -> list[str]:
    """The texts of one batch that ``fit`` holds exactly: ObjectIds' texts (already canonical) as
    they are when it holds 24 characters, every other value through :func:`encode_fitting`;
    each value refused is told to ``reject(shown, reason)``."""
    texts = oids if fit.holds_object_ids else _fitting(oids, fit, reject)
    rest = _fitting(others, fit, reject)
    return texts + rest if rest else texts


def _fitting(
    values: Iterable[object], fit: ColumnFit, reject: Callable[[str, str], None]
) -> list[str]:
    texts: list[str] = []
    for value in values:
        try:
            texts.append(encode_fitting(value, fit))
        except UnsupportedId as exc:
            reject(exc.shown, exc.reason)
    return texts


_INT64 = range(-(2**63), 2**63)
_DOUBLE_DIGITS = 309
"""Digits of the largest whole double: a longer text of digits can only be a string's."""


def _double(number: int) -> float | None:
    try:
        return float(number)
    except OverflowError:  # 309 digits above the largest double
        return None


def candidates(text: str) -> list[object]:
    """Every BSON value whose canonical text is ``text`` (:func:`encode_id` inverted): what a
    document must not have for ``text`` to be an orphan. A string always; an ObjectId, an
    integer or a UUID where the text is that value's canonical form."""
    found: list[object] = [text]
    if len(text) == 24 and ObjectId.is_valid(text) and text == text.lower():
        found.append(ObjectId(text))
    digits = text.removeprefix("-")
    if digits.isdigit() and text.isascii() and len(digits) <= _DOUBLE_DIGITS:
        number = int(text)
        if str(number) == text and number in _INT64:
            found.append(Int64(number))  # MongoDB compares numbers by value, of any type
        elif str(number) == text and _double(number) == number:
            found.append(float(number))  # beyond int64, only a double can hold it
    if len(text) == 36:
        try:
            value = uuid.UUID(text)
        except ValueError:
            pass
        else:
            if str(value) == text:
                found.append(Binary(value.bytes, UUID_SUBTYPE))
    return found


def matched_texts(value: object) -> list[str]:
    """The canonical texts that a stored value equals by MongoDB's comparison: its own, and for
    a whole number of another numeric type (5.0) the integer's, which a point lookup of
    ``Int64(5)`` also finds."""
    try:
        return [encode_id(value)]
    except UnsupportedId:
        pass
    if isinstance(value, float) and value.is_integer():
        return [str(int(value))]
    if isinstance(value, Decimal128):
        number = value.to_decimal()
        if number.is_finite() and number == number.to_integral_value():
            return [str(int(number))]
    return []
