"""Bad data, bad config, bad targets, and the guards: clear errors, nothing lost or mangled."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from bson import Int64, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idsync import Job, RunOptions, sync
from idsync.ids import UnsupportedId
from idsync.mongo.values import encode_id
from tests.conftest import BOTH_TARGETS, MYSQL_URL, Env, mysql_connect
from tests.fault.conftest import said_once

pytestmark = pytest.mark.fault

_ids = st.one_of(
    st.builds(ObjectId, st.binary(min_size=12, max_size=12)),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=70),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.builds(Int64, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.uuids(),
    st.floats(allow_nan=False),
    st.booleans(),
)


def _encodable(value: object, kind: str) -> str | None:
    """The text the target stores for ``value``, or None when it is rejected (PostgreSQL's text
    types cannot hold NUL)."""
    try:
        text = encode_id(value)
    except UnsupportedId:
        return None
    if kind == "postgres" and "\x00" in text:
        return None
    return text if len(text) <= 64 else None


@BOTH_TARGETS
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    source=st.lists(_ids, max_size=40, unique_by=lambda v: (type(v).__name__, repr(v))),
    target=st.lists(st.text(alphabet="abcdef0123456789", min_size=1, max_size=24), max_size=20),
)
def test_after_a_run_target_holds_every_encodable_source_id_and_nothing_else_changed(
    env: Env, source: list[Any], target: list[str]
) -> None:
    coll = env.mongo_db.cluster_trips
    coll.drop()
    env.mongo_db.create_collection("cluster_trips")  # an empty source exists; a missing one fails
    env.sql("DROP TABLE IF EXISTS cm_cluster_id")
    env.init_table()
    for text in set(target):
        env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", (text,))
    stored_source = []
    for value in source:  # one by one: the server decides which _ids collide (FerretDB: more)
        try:
            coll.insert_one({"_id": value})
            stored_source.append(value)
        except Exception:  # a value this server cannot store as _id
            continue
    before = set(env.target_ids())
    report = sync(Job(), env.settings(), RunOptions(allow_empty_source=True))
    after = env.target_ids()
    assert len(after) == len(set(after))
    encodable = {t for v in stored_source if (t := _encodable(v, env.kind)) is not None}
    assert set(after) >= encodable | before
    assert set(after) - before <= encodable  # nothing but source ids was added
    assert report.inserted == len(set(after) - before)


def test_password_with_special_characters(env: Env) -> None:
    password = "p@ss:w/rd#%?&= é"
    quoted = "p%40ss%3Aw%2Frd%23%25%3F%26%3D%20%C3%A9"
    user = f"u{uuid.uuid4().hex[:8]}"
    admin = mysql_connect(MYSQL_URL)
    for host in ("localhost", "127.0.0.1"):
        admin.cursor().execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY %s", (password,))
        admin.cursor().execute(f"GRANT ALL ON *.* TO '{user}'@'{host}'")
    try:
        env.add_source([ObjectId()])
        env.init_table()
        url = env.mysql_url.replace("idsync:idsync@", f"{user}:{quoted}@")
        done = env.idsync("run", "--json", env={"IDSYNC_MYSQL_URL": url})
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["inserted"] == 1
        assert password not in done.stdout + done.stderr
    finally:
        for host in ("localhost", "127.0.0.1"):
            admin.cursor().execute(f"DROP USER '{user}'@'{host}'")
        admin.close()


@BOTH_TARGETS
def test_missing_column_says_so(env: Env) -> None:
    env.sql("CREATE TABLE cm_cluster_id (other VARCHAR(64))")
    env.add_source([ObjectId()])
    done = env.idsync("run")
    assert done.returncode == 2
    assert said_once("column cluster_id not found", done.stderr), done.stderr


@BOTH_TARGETS
def test_non_text_column_is_refused(env: Env) -> None:
    env.sql("CREATE TABLE cm_cluster_id (cluster_id BIGINT)")
    env.add_source([1])
    done = env.idsync("run")
    assert done.returncode == 2 and "ids need a text type" in done.stderr


@BOTH_TARGETS
def test_max_inserts_guard(env: Env) -> None:
    env.add_source([ObjectId() for _ in range(10)])
    env.init_table()
    refused = env.idsync("run", "--json", "--max-inserts", "5")
    assert refused.returncode == 3
    report = json.loads(refused.stdout)
    assert report["status"] == "refused" and report["missing"] == 10
    assert "10 ids are missing, more than the limit of 5" in report["error"]
    assert env.target_ids() == []
    assert env.idsync("run", "--max-inserts", "10").returncode == 0
    assert len(env.target_ids()) == 10


@BOTH_TARGETS
def test_max_inserts_as_a_share_of_the_target(env: Env) -> None:
    env.add_source([ObjectId() for _ in range(12)])
    env.init_table()
    assert env.idsync("run", "--max-inserts", "50%").returncode == 3  # empty target: 0 allowed
    assert env.idsync("run", "--max-inserts", "50%", "--force").returncode == 0
    env.add_source([ObjectId() for _ in range(7)])
    assert env.idsync("run", "--max-inserts", "50%").returncode == 3  # 7 > 6
    assert env.idsync("run", "--max-inserts", "60%").returncode == 0  # 7 <= 7
    assert env.idsync("run", "--max-inserts", "lots").returncode == 2
