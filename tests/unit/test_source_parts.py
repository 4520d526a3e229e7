"""The source's pure parts: slicing ids out of raw batches, and reading a server's plan."""

from collections.abc import Sequence
from typing import Any

import bson
from bson import Int64, ObjectId
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from hypothesis import given
from hypothesis import strategies as st

from idsync.mongo.raw import split_batch
from idsync.mongo.source import _has_stage

_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)

object_ids = st.binary(min_size=12, max_size=12).map(ObjectId)
other_ids = st.one_of(
    st.text(min_size=1, max_size=30),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
    st.uuids(),
    st.binary(min_size=12, max_size=12),  # 12 bytes, like an ObjectId, but binary subtype 0
)


def _raw(ids: Sequence[object]) -> bytes:
    return b"".join(bson.encode({"_id": value}, codec_options=_CODEC) for value in ids)


@given(st.lists(st.one_of(object_ids, other_ids), max_size=60))
def test_every_id_comes_out_once_and_exact(ids: list[object]) -> None:
    oids, others = split_batch(_raw(ids))
    assert oids == [str(v) for v in ids if isinstance(v, ObjectId)]
    assert others == [v for v in ids if not isinstance(v, ObjectId)]


@given(st.lists(object_ids, min_size=1, max_size=60))
def test_the_fast_path_agrees_with_decoding(ids: list[ObjectId]) -> None:
    oids, _others = split_batch(_raw(ids))
    assert oids == [str(doc["_id"]) for doc in bson.decode_all(_raw(ids))]


def test_a_batch_that_only_looks_like_object_ids_is_decoded() -> None:
    # 22-byte documents that are not {_id: ObjectId}: a string _id of 7 characters, and an
    # ObjectId under another name; the stride check must not take them for ids.
    ids: list[object] = ["abcdefg", ObjectId()]
    raw = _raw(ids[:1]) + bson.encode({"_iD": ids[1]})
    oids, others = split_batch(raw)
    assert oids == []
    assert others == ["abcdefg", None]


def test_index_scans_are_found_in_every_explain_shape() -> None:
    classic = {
        "queryPlanner": {
            "winningPlan": {"stage": "PROJECTION_COVERED", "inputStage": {"stage": "IXSCAN"}}
        }
    }
    slot_based = {"queryPlanner": {"winningPlan": {"queryPlan": {"stage": "IXSCAN"}}}}
    sharded = {
        "queryPlanner": {
            "winningPlan": {
                "stage": "SHARD_MERGE_SORT",
                "shards": [{"winningPlan": {"stage": "IXSCAN"}}],
            }
        }
    }
    for plan in (classic, slot_based, sharded):
        assert _has_stage(plan, "IXSCAN")
    sort_in_memory = {
        "queryPlanner": {"winningPlan": {"stage": "SORT", "inputStage": {"stage": "COLLSCAN"}}}
    }
    ferretdb = {"queryPlanner": {"Plan": ["id=2 parent=0 notused=0 detail=SCAN t"]}}
    assert not _has_stage(sort_in_memory, "IXSCAN")
    assert not _has_stage(ferretdb, "IXSCAN")
