"""Raw BSON batches of `find` replies, cut into ids without decoding what need not be.

Every document of a batch ends as exactly one of: an ObjectId's text, another decoded value, or an
:class:`~idsync.ids.Undecodable` (a value the driver cannot decode, kept with its raw bytes so it
can be rejected with a reason): never an error that would end the scan.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import bson
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import InvalidBSON

from idsync.mongo.values import Undecodable


def field_values(doc: Mapping[str, Any], field: str) -> list[object]:
    """The values of ``field`` in one document, as :meth:`MongoSource.values` reads them."""
    return [value for value in walk(doc, field.split(".")) if value is not None]


def walk(node: object, path: list[str]) -> Iterator[object]:
    """Values at a dotted path, descending into arrays the way MongoDB's distinct does."""
    if isinstance(node, list):
        for item in node:
            yield from walk(item, path)
        return
    if not path:
        yield node
        return
    if isinstance(node, dict) and path[0] in node:
        yield from walk(node[path[0]], path[1:])


_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
LENIENT: CodecOptions[dict[str, Any]] = CodecOptions(
    uuid_representation=UuidRepresentation.STANDARD,
    unicode_decode_error_handler="surrogateescape",
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)
_OID_DOC = b"\x16\x00\x00\x00\x07_id\x00"  # the header of a whole {_id: ObjectId} document
_OID_DOC_SIZE = 22  # header, 12 bytes of ObjectId, the document's terminating zero


def split_batch(batch: bytes) -> tuple[list[str], list[object]]:
    """Sort the ``{_id}`` documents of a raw batch into ObjectId texts and other raw values.

    ObjectIds are sliced straight out of the bytes (about 5 times faster than decoding them);
    anything else is decoded as any document is (UUIDs in the standard representation), and a
    document the driver cannot decode becomes one :class:`Undecodable` value: never an error
    that would end the scan, so every document is accounted for.
    """
    count, rest = divmod(len(batch), _OID_DOC_SIZE)
    if not rest and _only_object_ids(batch, count):
        # The usual batch: one hex conversion, then a slice per id (half the per-id cost).
        text = batch.hex()
        step, first = 2 * _OID_DOC_SIZE, 2 * len(_OID_DOC)
        return [text[at : at + 24] for at in range(first, len(text), step)], []
    oids: list[str] = []
    others: list[object] = []
    for raw in documents(batch):
        if raw.startswith(_OID_DOC) and len(raw) == _OID_DOC_SIZE and raw[-1] == 0:
            oids.append(raw[9:21].hex())
        else:
            decoded = decode(raw)
            others.append(decoded.get("_id") if isinstance(decoded, dict) else decoded)
    return oids, others


def field_batch(batch: bytes, path: list[str]) -> list[object]:
    """The non-null values at ``path`` of each document of a raw batch, array elements each;
    a document the driver cannot decode gives one :class:`Undecodable` value."""
    values: list[object] = []
    for raw in documents(batch):
        decoded = decode(raw)
        if isinstance(decoded, Undecodable):
            values.append(decoded)
        else:
            # A null field means "no value here", not an id to reject.
            values.extend(value for value in walk(decoded, path) if value is not None)
    return values


def documents(batch: bytes) -> Iterator[bytes]:
    """Each document of a raw batch; a length that does not fit ends the
    batch with what is left, as one document (it will not decode, so it is rejected)."""
    pos, end = 0, len(batch)
    while pos < end:
        size = int.from_bytes(batch[pos : pos + 4], "little")
        if size < 5 or pos + size > end:
            size = end - pos
        yield batch[pos : pos + size]
        pos += size


def decode(raw: bytes) -> dict[str, Any] | Undecodable:
    try:
        return bson.decode(raw, _CODEC)
    except (InvalidBSON, ValueError, OverflowError) as exc:
        return Undecodable(f"undecodable value: {_undecodable_reason(exc)}", raw[4:-1])


def holding(raw: bytes, field: str, value: Undecodable) -> dict[str, Any]:
    """A document that cannot be decoded, as its `_id` (decoded leniently: the poller needs it
    to move on) with ``value`` at the field's path."""
    try:
        key = bson.decode(raw, LENIENT).get("_id")
    except (InvalidBSON, ValueError, OverflowError):
        key = None
    *outer, last = field.split(".")
    doc: dict[str, Any] = {last: value}
    for part in reversed(outer):
        doc = {part: doc}
    doc.setdefault("_id", key)
    return doc


def _undecodable_reason(exc: Exception) -> str:
    text = str(exc)
    if "codec can't decode" in text:
        return "string is not valid UTF-8"
    if "out of range" in text:
        return "date outside years 1-9999"
    return text.split(" (", maxsplit=1)[0][:80] or type(exc).__name__


def _only_object_ids(batch: bytes, count: int) -> bool:
    """Whether ``batch`` is ``count`` whole ``{_id: ObjectId}`` documents back to back: every
    header byte and every terminator checked in one strided pass each."""
    for at, byte in enumerate(_OID_DOC):
        if batch[at::_OID_DOC_SIZE].count(byte) != count:
            return False
    return batch[_OID_DOC_SIZE - 1 :: _OID_DOC_SIZE].count(0) == count
