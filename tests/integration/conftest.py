"""A second MongoDB for the check's tests: one with the aggregation operators the fast path needs.

IDSYNC_TEST_WATCH_MONGO_URI  mongo-java-server (`dev/services up mongo-java`): it has ``$toString``
                             and ``$substrBytes``, which FerretDB lacks.

``source_env`` runs a test once per MongoDB: FerretDB (the ``env`` default) and mongo-java-server.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from tests.conftest import MYSQL_URL, Env, _with_path, mysql_connect

OPERATORS_MONGO_URI = os.environ.get("IDSYNC_TEST_WATCH_MONGO_URI", "mongodb://127.0.0.1:27019/")


@contextlib.contextmanager
def _databases(mongo_uri: str, prefix: str) -> Iterator[Env]:
    """A fresh MongoDB database on ``mongo_uri`` and MySQL database, both dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    client: MongoClient[dict[str, Any]] = MongoClient(
        mongo_uri, uuidRepresentation="standard", serverSelectionTimeoutMS=3000
    )
    try:
        client.admin.command("ping")
    except Exception as exc:
        client.close()
        pytest.fail(
            f"MongoDB not reachable at {mongo_uri} ({exc}); run `dev/services up mongo-java`"
            " or set IDSYNC_TEST_WATCH_MONGO_URI"
        )
    admin = mysql_connect(MYSQL_URL)
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    conn = mysql_connect(MYSQL_URL, database=name)
    try:
        yield Env(
            mongo_db=client[name],
            mysql=conn,
            mongo_uri=_with_path(mongo_uri, name),
            mysql_url=_with_path(MYSQL_URL, name),
        )
    finally:
        conn.close()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
        client.drop_database(name)
        client.close()


@pytest.fixture
def operators_env(servers: None) -> Iterator[Env]:
    """Like ``env``, with the MongoDB database on mongo-java-server."""
    with _databases(OPERATORS_MONGO_URI, "idsync_c") as env:
        yield env


@pytest.fixture(params=["ferretdb", "mongo-java"])
def source_env(request: pytest.FixtureRequest, servers: None) -> Iterator[Env]:
    """Each MongoDB in turn: FerretDB (no fast path on that side), mongo-java-server (fast)."""
    if request.param == "ferretdb":
        yield request.getfixturevalue("env")
        return
    with _databases(OPERATORS_MONGO_URI, "idsync_c") as env:
        yield env
