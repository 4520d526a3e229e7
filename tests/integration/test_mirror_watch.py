"""Mirror mode in `watch`: delete events delete rows (re-verified), passes delete orphans."""

from __future__ import annotations

import pytest
from bson import ObjectId

from idsync import Job, RunOptions
from idsync.errors import GuardError
from tests.conftest import WATCH_BOTH_TARGETS, Env
from tests.integration.test_mirror import _child, _refer
from tests.integration.test_watch import Running, fast
from tests.watch_support import wait_until

MIRROR = Job(delete_orphans=True)


def _ids(env: Env) -> set[str]:
    return set(env.target_ids())


@WATCH_BOTH_TARGETS
def test_a_watcher_deletes_the_rows_of_deleted_documents(watch_env: Env) -> None:
    env = watch_env
    env.init_table()
    kept = [ObjectId() for _ in range(20)]
    env.add_source(kept)
    stale = str(ObjectId())
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", (stale,))
    if env.kind == "mysql":
        env.mysql.commit()
    coll = env.mongo_db["cluster_trips"]
    with Running(env, fast(), MIRROR) as running:
        wait_until(lambda: stale not in _ids(env), "the first pass's delete")
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")
        doomed = kept[:5]
        coll.delete_many({"_id": {"$in": doomed}})
        back = ObjectId()  # deleted, then inserted again: it stays
        coll.insert_one({"_id": back})
        coll.delete_one({"_id": back})
        coll.insert_one({"_id": back})
        brief = ObjectId()  # inserted, then deleted: it goes
        coll.insert_one({"_id": brief})
        coll.delete_one({"_id": brief})
        marker = ObjectId()
        coll.insert_one({"_id": marker})
        wait_until(lambda: str(marker) in _ids(env), "the events before the marker")
        assert (running.value("idsync_ids_deleted_total") or 0) >= 6
    expected = {str(oid) for oid in [*kept[5:], back, marker]}
    assert _ids(env) == expected
    assert running.summary is not None and running.summary.deleted >= 6


@WATCH_BOTH_TARGETS
def test_a_watcher_keeps_a_referenced_row_and_goes_on(watch_env: Env) -> None:
    env = watch_env
    env.init_table()
    ids = [ObjectId() for _ in range(5)]
    env.add_source(ids)
    with Running(env, fast(), MIRROR) as running:
        wait_until(lambda: len(_ids(env)) == 5, "the first pass")
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")
        _child(env, "RESTRICT")
        _refer(env, [str(ids[0])])
        env.mongo_db["cluster_trips"].delete_many({"_id": {"$in": ids[:2]}})
        marker = ObjectId()
        env.mongo_db["cluster_trips"].insert_one({"_id": marker})
        wait_until(lambda: str(marker) in _ids(env), "the events before the marker")
    assert _ids(env) == {str(oid) for oid in [ids[0], *ids[2:], marker]}


@WATCH_BOTH_TARGETS
def test_a_mirroring_watcher_refuses_a_cascade_unless_allowed(watch_env: Env) -> None:
    env = watch_env
    env.init_table()
    _child(env, "CASCADE")
    with Running(env, fast(), MIRROR) as running:
        error = running.ended()
    assert isinstance(error, GuardError) and "ON DELETE CASCADE" in str(error)
    allowed = RunOptions(allow_cascade=True)
    with Running(env, fast(), MIRROR, run_options=allowed) as running:
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")


def test_without_mirror_delete_events_change_nothing(watch_env: Env) -> None:
    env = watch_env
    env.init_table()
    ids = [ObjectId() for _ in range(4)]
    env.add_source(ids)
    with Running(env, fast()) as running:
        wait_until(lambda: len(_ids(env)) == 4, "the first pass")
        wait_until(lambda: running.health.report()[1]["mode"] == "change-stream", "the stream")
        env.mongo_db["cluster_trips"].delete_many({})
        marker = ObjectId()
        env.mongo_db["cluster_trips"].insert_one({"_id": marker})
        wait_until(lambda: str(marker) in _ids(env), "the marker")
    assert len(_ids(env)) == 5


def test_a_polling_watcher_deletes_in_its_full_passes(env: Env) -> None:
    env.init_table()
    ids = [ObjectId() for _ in range(6)]
    env.add_source(ids)
    with Running(env, fast(reconcile_every_s=1.0), MIRROR) as running:
        wait_until(lambda: len(_ids(env)) == 6, "the first pass")
        assert running.health.report()[1]["mode"] == "polling"
        env.mongo_db["cluster_trips"].delete_many({"_id": {"$in": ids[:2]}})
        wait_until(lambda: len(_ids(env)) == 4, "a later full pass")
    assert running.summary is not None and running.summary.deleted == 2


pytestmark = pytest.mark.integration
