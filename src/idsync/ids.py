"""Ids as SQL text: what a column holds exactly, how a text is shown, and the facts of an
ObjectId's hex text (prefixes, checksums) that check and the servers' adapters share.

How a BSON value becomes this text is :mod:`idsync.mongo.values`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

DUPLICATE_TEXT = "another source id has the same text (e.g. int 5 and '5')"
"""Why the second of two source ids with one text (int 5 and string "5") is rejected."""


class UnsupportedId(ValueError):
    """The value has no canonical text the target can hold; ``reason`` says why in a few words,
    ``shown`` is the value as a report prints it."""

    def __init__(self, reason: str, shown: str = "") -> None:
        super().__init__(reason)
        self.reason, self.shown = reason, shown


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
    nul: bool = True
    """Whether a text may hold the NUL character (PostgreSQL's text types cannot)."""

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
        return self._character_problem(text)

    def _character_problem(self, text: str) -> str | None:
        if not self.nul and "\x00" in text:
            return "NUL character: the column's type cannot hold it"
        if self.trailing_spaces is not None and text.endswith(" "):
            return f"trailing space: {self.trailing_spaces}"
        if text.isascii() or self.charset is None:
            return None
        reason, fits = _CHARSET_CHECKS.get(self.charset, ("", lambda _text: True))
        return None if fits(text) else f"character {reason}"


def stored_text(value: str | bytes) -> str:
    """A target column's value as a text that equals a source id's text exactly when the
    stored bytes are that text's UTF-8: bytes that are not UTF-8 become lone surrogates, which
    no decoded source string holds (see :func:`shown_text` to print one)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def shown_text(text: str) -> str:
    """``text`` printable: bytes that are not UTF-8 (from :func:`stored_text`) as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def collision(other: str, *, by_this_run: bool = False) -> str:
    """Why an id was (or would be) refused for equalling ``other`` under the collation;
    ``by_this_run``: ``other`` is not stored yet, a dry run predicts that the run would."""
    if by_this_run:
        return f"collides with {other!r}, which the run would store, under the column's collation"
    return f"collides with stored value {other!r} under the column's collation"


# The hex text of an ObjectId.

OID_CHARS = 24
HEX = "0123456789abcdef"
_OID_TEXT = re.compile(r"[0-9a-f]{24}")
OID_TEXT_SQL = "^[0-9a-f]{24}$"
"""The same shape as :func:`is_oid_text`, for a case-sensitive SQL REGEXP."""


PRIMES = (67_108_859, 67_108_837)
"""Fixed moduli, for tests only: :func:`draw_moduli` gives each check its own."""


class Summary(NamedTuple):
    """What a side holds in one bucket: its rows, and the sum of :func:`checksums` over them."""

    size: int
    """Ids (rows, on the target) in the bucket."""
    first: int
    second: int

    def plus(self, other: Summary) -> Summary:
        return Summary(*(a + b for a, b in zip(self, other, strict=True)))


NOTHING = Summary(0, 0, 0)


def checksums(text: str, moduli: tuple[int, int] = PRIMES) -> tuple[int, int]:
    """An id's two checksums: ``h * h mod p`` with ``h`` the 96-bit number mod ``p``, per prime.

    Summed over a bucket they do not depend on order, and a row more or less changes them. Ids
    that differ by a little (one counter step) differ in ``h``; squaring keeps sums of several
    differences from cancelling the way sums of the ids themselves would. Both servers compute
    exactly this (:mod:`idsync.check.sides`)."""
    value = int(text, 16)
    first, second = (value % p for p in moduli)
    return first * first % moduli[0], second * second % moduli[1]


def is_utf8(text: str) -> bool:
    """Whether ``text`` is UTF-8 as stored: not so a string decoded with its invalid bytes
    escaped (a change stream's events are decoded that way, so that one bad value is
    rejected instead of ending the stream)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def is_oid_text(text: str) -> bool:
    """True for the canonical text of an ObjectId: exactly 24 lowercase hex characters."""
    return len(text) == OID_CHARS and _OID_TEXT.fullmatch(text) is not None


def next_prefix(prefix: str) -> str | None:
    """The prefix right after ``prefix`` among prefixes of its length; None after ``ff…f``."""
    digits = prefix.rstrip("f")
    if not digits:
        return None
    last = HEX.index(digits[-1]) + 1
    return digits[:-1] + HEX[last] + "0" * (len(prefix) - len(digits))


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """``(lo, hi)``: the ids with ``prefix`` are exactly those with ``lo <= id < hi`` (no upper
    bound when ``hi`` is None), comparing 24-character hex texts, or the ObjectIds they spell."""
    following = next_prefix(prefix)
    low = prefix.ljust(OID_CHARS, "0")
    return low, None if following is None else following.ljust(OID_CHARS, "0")
