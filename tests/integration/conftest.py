"""A second MongoDB for the check's tests: one with the aggregation operators the fast path needs.

IDSYNC_TEST_WATCH_MONGO_URI  mongo-java-server (`dev/services up mongo-java`): it has ``$toString``
                             and ``$substrBytes``, which FerretDB lacks.

``source_env`` runs a test once per MongoDB: FerretDB (the ``env`` default) and mongo-java-server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import WATCH_MONGO_URI, Env, databases, on_postgres


@pytest.fixture
def operators_env(servers: None) -> Iterator[Env]:
    """Like ``env``, with the MongoDB database on mongo-java-server."""
    with databases(WATCH_MONGO_URI, "idsync_c") as env:
        yield env


@pytest.fixture(params=["ferretdb", "mongo-java", "postgres"])
def source_env(request: pytest.FixtureRequest, servers: None) -> Iterator[Env]:
    """Each MongoDB in turn: FerretDB (no fast path on that side), mongo-java-server (fast);
    then mongo-java-server again with the PostgreSQL target."""
    if request.param == "ferretdb":
        yield request.getfixturevalue("env")
        return
    with databases(WATCH_MONGO_URI, "idsync_c") as env:
        if request.param == "mongo-java":
            yield env
            return
        with on_postgres(env, request.getfixturevalue("database")) as moved:
            yield moved
