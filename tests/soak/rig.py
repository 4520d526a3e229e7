"""One lane of the soak: a private FerretDB as the source and a private MariaDB or PostgreSQL
as the target, each behind a Toxiproxy link of its own, and idsync as a user runs it.

Every server is the lane's own (killed and restarted at will); the shared dev servers only lend
their binaries. The target's table has no UNIQUE index, so an id written twice would show.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo import MongoClient

from tests.fault.servers import ROOT, PrivateFerretDB, PrivateMariaDB, PrivatePostgres
from tests.fault.toxiproxy import Proxy

Target = PrivateMariaDB | PrivatePostgres
TABLES = {
    "mysql": "CREATE TABLE maas.cm_cluster_id (cluster_id VARCHAR(24) CHARACTER SET ascii"
    " COLLATE ascii_bin NOT NULL, KEY (cluster_id))",
    "postgres": 'CREATE TABLE cm_cluster_id (cluster_id varchar(24) COLLATE "C" NOT NULL)',
}


@dataclass
class Side:
    """A target server, its link, and what idsync is given to reach it."""

    kind: str
    server: Target
    link: Proxy

    @property
    def table(self) -> str:
        return "cm_cluster_id" if self.kind == "postgres" else "maas.cm_cluster_id"

    @property
    def url(self) -> str:
        return self.link.url(self.server.url())

    def ids(self) -> list[str]:
        return self.server.ids()

    def sql(self, statement: str) -> list[Any]:
        if isinstance(self.server, PrivatePostgres):
            return self.server.superuser_sql(statement, database="maas")
        return self.server.root_sql(statement)

    def kill_sessions(self) -> int:
        """End every idsync session on the server, as a DBA or a failover would."""
        if isinstance(self.server, PrivatePostgres):
            rows = self.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name LIKE 'idsync %'"
            )
            return len(rows)
        ids = self.server.root_sql(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'idsync'"
        )
        for (thread,) in ids:
            with contextlib.suppress(Exception):  # it may have ended on its own meanwhile
                self.server.root_sql(f"KILL CONNECTION {int(thread)}")
        return len(ids)


@dataclass
class Rig:
    workdir: Path
    source: PrivateFerretDB
    source_link: Proxy
    side: Side
    known: set[str] = field(default_factory=set)

    @property
    def source_uri(self) -> str:
        return self.source_link.url(self.source.uri)

    def add_source(self, count: int) -> None:
        ids = [ObjectId() for _ in range(count)]
        client: MongoClient[dict[str, Any]] = MongoClient(self.source.uri, timeoutMS=60_000)
        with client:
            coll = client["maas"]["cluster_trips"]
            for start in range(0, len(ids), 5000):
                coll.insert_many([{"_id": i} for i in ids[start : start + 5000]], ordered=False)
        self.known.update(str(i) for i in ids)

    def idsync(self, side: Side, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "IDSYNC_MONGO_URI": self.source_uri, "IDSYNC_TARGET_URL": side.url}
        for name in ("IDSYNC_CONFIG", "IDSYNC_MYSQL_URL"):
            env.pop(name, None)
        return subprocess.Popen(
            [sys.executable, "-m", "idsync", *args], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip

    def close(self) -> None:
        self.side.link.delete()
        self.side.server.stop()
        self.source_link.delete()
        self.source.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def build(ids: int, kind: str) -> Rig:
    """A lane of the soak's own: a source and a ``kind`` target started, linked and loaded with
    ``ids`` documents; nothing shared with another lane."""
    workdir = ROOT / ".local" / "pg-tests" / f"soak-{uuid.uuid4().hex[:8]}"
    for name in ("ferretdb", "target"):
        (workdir / name).mkdir(parents=True)
    source = PrivateFerretDB(workdir / "ferretdb")
    source.start()
    target = workdir / "target"
    server = PrivatePostgres(target) if kind == "postgres" else PrivateMariaDB(target)
    server.start()
    side = Side(kind, server, Proxy(f"127.0.0.1:{server.port}"))
    side.sql(TABLES[kind])
    rig = Rig(workdir, source, Proxy(f"127.0.0.1:{source.port}"), side)
    rig.add_source(ids)
    done = rig.idsync(side, "init")
    _, err = done.communicate(timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"idsync init on {kind}: {err}")
    return rig


def table_state(side: Side, known: set[str]) -> tuple[int, int]:
    """(ids written twice, ids no source document has) in the side's table."""
    rows = side.ids()
    twice = sum(n - 1 for n in Counter(rows).values() if n > 1)
    return twice, len(set(rows) - known)
