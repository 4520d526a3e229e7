"""Real servers for the tests: the local dev servers, or any named by environment variables.

IDSYNC_TEST_MONGO_URI  MongoDB to use (default: FerretDB from `dev/services up`)
IDSYNC_TEST_MYSQL_URL  MySQL to use, as a user that may create databases (default: local MariaDB)

Each test gets its own MongoDB database and MySQL database, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import MySQLdb
import psycopg
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from idsync.config import Job, MySQLURL, Settings
from idsync.targets import open_target
from idsync.urls import PostgresURL

MONGO_URI = os.environ.get("IDSYNC_TEST_MONGO_URI", "mongodb://127.0.0.1:27018/")
MYSQL_URL = os.environ.get("IDSYNC_TEST_MYSQL_URL", "mysql://idsync:idsync@127.0.0.1:33306/maas")
ROOT = Path(__file__).resolve().parent.parent


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path, parts.query, ""))


def mysql_connect(url: str, database: str | None = None, **kw: Any) -> Any:
    parsed = MySQLURL.parse(url)
    extra = {"unix_socket": parsed.unix_socket} if parsed.unix_socket else {}
    return MySQLdb.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.user,
        password=parsed.password,
        database=database or parsed.database,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=5,
        **extra,
        **kw,
    )


@pytest.fixture(scope="session")
def servers() -> None:
    """Fail (not skip) with a clear message when the servers are not there."""
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(MONGO_URI, serverSelectionTimeoutMS=3000)
        with client:
            client.admin.command("ping")
    except Exception as exc:
        pytest.fail(f"MongoDB not reachable at {MONGO_URI} ({exc}); run `dev/services up`")
    try:
        mysql_connect(MYSQL_URL).close()
    except MySQLdb.Error as exc:
        pytest.fail(f"MySQL not reachable at {MYSQL_URL} ({exc}); run `dev/services up`")


@dataclass
class Env:
    """One test's own pair of databases, with helpers to fill and read them."""

    mongo_db: Database[dict[str, Any]]
    mysql: Any
    mongo_uri: str
    mysql_url: str
    cleanup: list[Any] = field(default_factory=list)
    kind: str = "mysql"
    """The target's server: "mysql" or "postgres"."""

    def settings(self, **kw: Any) -> Settings:
        return Settings(mongo_uri=self.mongo_uri, mysql_url=self.mysql_url, **kw)

    def sql(self, statement: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        cur = self.mysql.cursor()
        cur.execute(statement, args)
        return list(cur.fetchall()) if cur.description else []

    def init_table(self, job: Job | None = None) -> None:
        with open_target(self.settings(), job or Job()) as target:
            target.connect()
            target.create_table()

    def create_owned(self) -> None:
        """idsync's own tables (runs history, watch state), as `idsync init` makes them."""
        with open_target(self.settings(), Job()) as target:
            target.connect()
            target.create_owned_tables()

    def tables(self) -> list[str]:
        """The names of the target database's tables, sorted."""
        if self.kind == "postgres":
            query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        else:
            query = (
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
            )
        return sorted(str(row[0]) for row in self.sql(query))

    def target_ids(self, table: str = "cm_cluster_id", column: str = "cluster_id") -> list[str]:
        """Every stored value, duplicates kept, sorted."""
        return sorted(row[0] for row in self.sql(f"SELECT {column} FROM {table}"))

    def add_source(self, ids: Sequence[object], collection: str = "cluster_trips") -> None:
        if ids:
            self.mongo_db[collection].insert_many([{"_id": i, "trips": []} for i in ids])

    def idsync(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI in a fresh process, as a user would."""
        full_env = {
            **os.environ,
            "IDSYNC_MONGO_URI": self.mongo_uri,
            "IDSYNC_MYSQL_URL": self.mysql_url,
            **(env or {}),
        }
        full_env.pop("IDSYNC_CONFIG", None)
        return subprocess.run(
            [sys.executable, "-m", "idsync", *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@contextlib.contextmanager
def databases(mongo_uri: str, prefix: str) -> Iterator[Env]:
    """A fresh MongoDB database on ``mongo_uri`` and a MySQL database, both dropped afterwards.

    Names are new every time: mongo-java-server invalidates every later change stream on a
    collection that was once dropped.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    client: MongoClient[dict[str, Any]] = MongoClient(
        mongo_uri, uuidRepresentation="standard", serverSelectionTimeoutMS=3000
    )
    try:
        client.admin.command("ping")
    except Exception as exc:
        client.close()
        pytest.fail(
            f"MongoDB not reachable at {mongo_uri} ({exc}); run `dev/services up all`"
            " or set IDSYNC_TEST_MONGO_URI / IDSYNC_TEST_WATCH_MONGO_URI"
        )
    # The default job's source exists, empty: a collection that does not exist is an error.
    client[name].create_collection("cluster_trips")
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
def env(request: pytest.FixtureRequest, servers: None) -> Iterator[Env]:
    """A test's own databases; the target is MySQL, or PostgreSQL for a test marked
    :data:`BOTH_TARGETS` (its SQL must read the same on both: plain names, %s parameters)."""
    with _targeted(request, MONGO_URI, "idsync_t") as made:
        yield made


@contextlib.contextmanager
def _targeted(request: pytest.FixtureRequest, mongo_uri: str, prefix: str) -> Iterator[Env]:
    """A test's own databases, the target the one its parameter names (MySQL by default)."""
    with databases(mongo_uri, prefix) as made:
        if getattr(request, "param", "mysql") == "mysql":
            yield made
            return
        with on_postgres(made, request.getfixturevalue("database")) as moved:
            yield moved


@contextlib.contextmanager
def on_postgres(env: Env, url: PostgresURL) -> Iterator[Env]:
    """``env`` with its target moved to the PostgreSQL database ``url``."""
    text = f"postgresql://{url.user}:{url.password}@{url.host}:{url.port}/{url.database}"
    conn = psycopg.connect(
        host=url.host, port=url.port, user=url.user, password=url.password,
        dbname=url.database, autocommit=True,
    )  # fmt: skip
    try:
        yield Env(env.mongo_db, conn, env.mongo_uri, text, kind="postgres")
    finally:
        conn.close()


BOTH_TARGETS = pytest.mark.parametrize("env", ["mysql", "postgres"], indirect=True)
"""Run a test once against each SQL target."""


# A MongoDB with change streams and more aggregation operators: mongo-java-server
# (`dev/services up all`), for the watch and check tests.
WATCH_MONGO_URI = os.environ.get("IDSYNC_TEST_WATCH_MONGO_URI", "mongodb://127.0.0.1:27019/")


@pytest.fixture
def watch_env(request: pytest.FixtureRequest, servers: None) -> Iterator[Env]:
    """Like ``env``, with the MongoDB database on the change-stream server; PostgreSQL as the
    target for a test marked :data:`WATCH_BOTH_TARGETS`."""
    with _targeted(request, WATCH_MONGO_URI, "idsync_w") as made:
        yield made


WATCH_BOTH_TARGETS = pytest.mark.parametrize("watch_env", ["mysql", "postgres"], indirect=True)
"""Run a test of ``watch_env`` once against each SQL target."""


@contextlib.contextmanager
def limited_user(env: Env, grants: Sequence[str]) -> Iterator[str]:
    """A user of the test's own with only ``grants`` (``"SELECT, INSERT ON table"``) on the
    test's target database; yields the target URL that logs in as it. Dropped afterwards.

    On PostgreSQL a table's CREATE becomes CREATE on the schema: what creating it needs there.
    """
    user = f"u{uuid.uuid4().hex[:10]}"
    parts = urlsplit(env.mysql_url)
    url = urlunsplit((parts.scheme, f"{user}:pw@{parts.hostname}:{parts.port}", parts.path, "", ""))

    def run(statement: str) -> None:
        env.mysql.cursor().execute(statement)  # no parameters: a % in it is itself

    if env.kind == "postgres":
        run(f"CREATE ROLE {user} LOGIN PASSWORD 'pw'")
        for grant in grants:
            what, _, table = grant.partition(" ON ")
            privileges = [p.strip() for p in what.split(",")]
            if "CREATE" in privileges:
                run(f"GRANT CREATE ON SCHEMA public TO {user}")
                privileges.remove("CREATE")
            on = "ALL TABLES IN SCHEMA public" if table == "*" else table
            if privileges:
                run(f"GRANT {', '.join(privileges)} ON {on} TO {user}")
        try:
            yield url
        finally:
            run(f"DROP OWNED BY {user}")
            run(f"DROP ROLE {user}")
        return
    database = parts.path.lstrip("/")
    run(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
    for grant in grants:
        what, _, table = grant.partition(" ON ")
        run(f"GRANT {what} ON `{database}`.{table} TO '{user}'@'%'")
    try:
        yield url
    finally:
        run(f"DROP USER IF EXISTS '{user}'@'%'")


POSTGRES_URL = os.environ.get(
    "IDSYNC_TEST_POSTGRES_URL", "postgresql://idsync:idsync@127.0.0.1:35432/maas"
)


@pytest.fixture
def database() -> Iterator[PostgresURL]:
    """A database of this test's own, dropped afterwards."""
    url = PostgresURL.parse(POSTGRES_URL)
    name = f"idsync_pg_{uuid.uuid4().hex[:10]}"
    admin = f"host={url.host} port={url.port} user={url.user} password={url.password}"
    try:
        server = psycopg.connect(admin, dbname=url.database, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable ({exc}); run `dev/services up postgres`")
    with server:
        server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PostgresURL(url.host, url.port, url.user, url.password, name)
    finally:
        with psycopg.connect(admin, dbname=url.database, autocommit=True) as server:
            server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def pg_sql(url: PostgresURL, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(
        host=url.host, port=url.port, user=url.user, password=url.password, dbname=url.database,
        autocommit=True,
    ) as conn:  # fmt: skip
        cur = conn.execute(statement)
        return list(cur.fetchall()) if cur.description else []
