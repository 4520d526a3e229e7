"""Point lookups of ids by their text: whether the source has them now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from bson import ObjectId
from pymongo import ReadPreference
from pymongo.collection import Collection

from idsync.mongo.raw import field_batch
from idsync.mongo.values import candidates, matched_texts

# Texts looked up per query: each has up to four candidate values, well under any $in limit.
_CHUNK = 1000


def live_texts(coll: Collection[dict[str, Any]], field: str, texts: Sequence[str]) -> set[str]:
    """Which of ``texts`` some document's ``field`` has now: every value with that text looked
    up (on the `_id` index for `_id`). Raises the driver's errors."""
    found: set[str] = set()
    path = field.split(".")
    # Never a secondary's view: one that lags would call a document just inserted absent.
    primary = coll.with_options(read_preference=ReadPreference.PRIMARY)
    for start in range(0, len(texts), _CHUNK):
        chunk = texts[start : start + _CHUNK]
        query = {field: {"$in": [value for text in chunk for value in candidates(text)]}}
        with primary.find_raw_batches(query, {field: 1}) as cursor:
            for batch in cursor:
                values = field_batch(cast(bytes, batch), path)
                found.update(text for value in values for text in matched_texts(value))
    return found & set(texts)


def object_id_twins(coll: Collection[dict[str, Any]], texts: Sequence[str]) -> set[str]:
    """Which of ``texts`` (ObjectIds' canonical texts) some document's `_id` has as an
    ObjectId: a string `_id` with that text is then a second id of one text."""
    found: set[str] = set()
    for start in range(0, len(texts), _CHUNK):
        query = {"_id": {"$in": [ObjectId(text) for text in texts[start : start + _CHUNK]]}}
        found.update(str(doc["_id"]) for doc in coll.find(query, {"_id": 1}))
    return found
