"""Canonical text form of MongoDB ids, and whether a given SQL column can hold it exactly.

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

_SAMPLE_CHARS = 120
_BAD_UTF8 = "undecodable value: string is not valid UTF-8"
_BAD_DATE = "undecodable value: date outside years 1-9999"
_RAW_SAMPLE_BYTES = 24

DUPLICATE_TEXT = "another source id has the same text (e.g. int 5 and '5')"
"""Why the second of two source ids with one text (int 5 and string "5") is rejected."""


class UnsupportedId(ValueError):
    """The value has no canonical text the target can hold; ``reason`` says why in a few words,
    ``shown`` is the value as a report prints it."""

    def __init__(self, reason: str, shown: str = "") -> None:
        super().__init__(reason)
        self.reason, self.shown = reason, shown


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
    if not value.isascii() and not _utf8(value):
        raise UnsupportedId(_BAD_UTF8, describe(value))
    return value


def _utf8(text: str) -> bool:
    """Whether ``text`` is UTF-8 as stored: not so a string decoded with its invalid bytes
    escaped (a change stream's events are decoded that way, so that one bad value is
    rejected instead of ending the stream)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


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
        text = value if value.isascii() or _utf8(value) else _escaped_bytes(value)
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


# MySQL latin1 is Windows-1252 plus the five bytes that code page leaves undefined.
_CP1252_HOLES = frozenset("\x81\x8d\x8f\x90\x9d")


def _fits_latin1(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return all(ch in _CP1252_HOLES or ch.encode("cp1252", "ignore") for ch in text)
    return True


def _fits_bmp(text: str) -> bool:
    return all(ord(ch) <= 0xFFFF for ch in text)


# Character sets we can check before writing; any other one is left to the server, whose strict
# mode turns a bad value into an error that the target isolates and reports per id.
_CHARSET_CHECKS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "utf8mb4": ("", lambda _text: True),
    "utf8mb3": ("outside utf8mb3 (4-byte character)", _fits_bmp),
    "utf8": ("outside utf8mb3 (4-byte character)", _fits_bmp),
    "ucs2": ("outside ucs2 (4-byte character)", _fits_bmp),
    "ascii": ("not ASCII", str.isascii),
    "latin1": ("outside latin1", _fits_latin1),
}


@dataclass(frozen=True)
class ColumnFit:
    """What a target column can store exactly, as read from the server's catalog."""

    max_chars: int | None
    """Longest text in characters (VARCHAR/CHAR/TEXT), or None when only bytes count."""
    max_bytes: int | None
    """Longest value in bytes (VARBINARY/BINARY/BLOB), or None for character columns."""
    charset: str | None
    """The column's character set, None for binary columns."""
    trailing_spaces: str | None = None
    """Why a text ending in a space would not come back exactly (a CHAR column strips them
    when read, a PAD SPACE collation takes it for the text without them), or None."""

    @property
    def holds_object_ids(self) -> bool:
        """Whether an ObjectId's text (24 lowercase hex characters) fits exactly."""
        return self.problem("0" * 24) is None

    def problem(self, text: str) -> str | None:
        """Why ``text`` would not be stored exactly, or None when it fits."""
        if self.max_bytes is not None:
            size = len(text.encode())
            if size > self.max_bytes:
                return f"too long for column: {size} bytes > {self.max_bytes}"
            return None
        if self.max_chars is not None and len(text) > self.max_chars:
            return f"too long for column: {len(text)} characters > {self.max_chars}"
        if self.trailing_spaces is not None and text.endswith(" "):
            return f"trailing space: {self.trailing_spaces}"
        if text.isascii() or self.charset is None:
            return None
        reason, fits = _CHARSET_CHECKS.get(self.charset, ("", lambda _text: True))
        return None if fits(text) else f"character {reason}"


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


def stored_text(value: str | bytes) -> str:
    """A target column's value as a text that equals a source id's text exactly when the
    stored bytes are that text's UTF-8: bytes that are not UTF-8 become lone surrogates, which
    no decoded source string holds (see :func:`shown_text` to print one)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def shown_text(text: str) -> str:
    """``text`` printable: bytes that are not UTF-8 (from :func:`stored_text`) as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def collision(other: str) -> str:
    """Why an id was (or would be) refused for equalling ``other`` under the collation."""
    return f"collides with stored value {other!r} under the column's collation"
