"""Datasets and scenarios: what the source holds, what the table holds before each timed run.

Each dataset (document shape and size) has its own MongoDB database and MySQL database of the same
name, e.g. ``idsync_bench_100k`` or ``idsync_bench_ids_1m``. For every scenario the table's rows
before a run are kept in a snapshot table, built once and reused while its manifest row matches;
resetting the target (TRUNCATE, then a server-side copy of the snapshot) is not timed.
"""

from __future__ import annotations

import functools
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import MySQLdb

from bench.conn import mysql_connect, with_path
from bench.datagen import cluster_ids

TABLE, COLUMN = "cm_cluster_id", "cluster_id"
# Databases of one benchmark run: another prefix keeps two runs on one server apart.
PREFIX = os.environ.get("BENCH_DATABASE_PREFIX", "idsync_bench")
_GONE = {2006, 2013}  # the client's "server has gone away" and "lost connection"
SCENARIOS = {
    "a": "first sync into an empty table",
    "b": "1% of ids missing",
    "c": "already in sync",
    "d": "in sync, plus 1% rows only in MySQL",
}


def size_label(n: int) -> str:
    """1000 → 1k, 100000 → 100k, 1000000 → 1m."""
    for unit, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


@dataclass(frozen=True)
class Dataset:
    """``n`` documents of one shape from one seed."""

    shape: str
    n: int
    seed: int = 7

    @property
    def name(self) -> str:
        infix = "" if self.shape == "clusters" else f"{self.shape}_"
        return f"{PREFIX}_{infix}{size_label(self.n)}"

    @functools.cached_property
    def ids(self) -> list[str]:
        return [str(oid) for oid in cluster_ids(self.n, self.seed)]

    def missing(self, scenario: str) -> list[str]:
        """The ids a correct run of ``scenario`` inserts."""
        if scenario == "a":
            return self.ids
        if scenario == "b":
            return random.Random(self.seed + 2).sample(self.ids, max(1, self.n // 100))
        return []

    def rows_before(self, scenario: str) -> list[str]:
        """The table's rows when a run of ``scenario`` starts."""
        if scenario == "a":
            return []
        if scenario == "b":
            gone = set(self.missing("b"))
            return [i for i in self.ids if i not in gone]
        if scenario == "c":
            return self.ids
        extra = [str(oid) for oid in cluster_ids(max(1, self.n // 100), self.seed + 1)]
        return self.ids + extra

    def rows_after(self, scenario: str) -> int:
        return self.n + (max(1, self.n // 100) if scenario == "d" else 0)


class BenchTable:
    """The dataset's MySQL database: idsync's own table, and one snapshot per scenario."""

    def __init__(self, mysql_url: str, dataset: Dataset) -> None:
        self.dataset = dataset
        self.url = with_path(mysql_url, dataset.name)
        self._conn: Any = None

    def open(self, mongo_uri: str) -> None:
        """Create the database if needed, and the table as ``idsync init`` creates it."""
        server = mysql_connect(self.url, database=False)
        server.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{self.dataset.name}`")
        server.close()
        idsync = str(Path(sys.executable).with_name("idsync"))
        env = {"IDSYNC_MYSQL_URL": self.url, "IDSYNC_MONGO_URI": mongo_uri, "PATH": "/usr/bin:/bin"}
        subprocess.run([idsync, "init"], env=env, check=True, capture_output=True)
        self._conn = mysql_connect(self.url)
        self._execute(
            "CREATE TABLE IF NOT EXISTS bench_manifest (name VARCHAR(64) PRIMARY KEY,"
            " n INT NOT NULL, seed INT NOT NULL, `rows` INT NOT NULL)"
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _execute(self, sql: str, args: tuple[object, ...] = ()) -> Any:
        try:
            cur = self._conn.cursor()
            cur.execute(sql, args)
        except MySQLdb.OperationalError as exc:
            if exc.args[0] not in _GONE:
                raise
            self._conn = mysql_connect(self.url)  # the server restarted: once more, anew
            cur = self._conn.cursor()
            cur.execute(sql, args)
        rows = cur.fetchall()
        self._conn.commit()
        return rows

    def ensure_snapshot(self, scenario: str) -> None:
        """Build ``bench_rows_<scenario>`` unless the manifest says it is there already."""
        name, data = f"bench_rows_{scenario}", self.dataset
        rows = data.rows_before(scenario)
        wanted = (data.n, data.seed, len(rows))
        found = self._execute("SELECT n, seed, `rows` FROM bench_manifest WHERE name = %s", (name,))
        if found and tuple(found[0]) == wanted:
            return
        self._execute(f"DROP TABLE IF EXISTS {name}")
        self._execute(
            f"CREATE TABLE {name} (seq INT AUTO_INCREMENT PRIMARY KEY,"
            f" {COLUMN} VARCHAR(64) NOT NULL) ENGINE=InnoDB"
        )
        cur = self._conn.cursor()
        for start in range(0, len(rows), 10_000):
            chunk = [(i,) for i in rows[start : start + 10_000]]
            cur.executemany(f"INSERT INTO {name} ({COLUMN}) VALUES (%s)", chunk)
        self._execute("REPLACE INTO bench_manifest VALUES (%s, %s, %s, %s)", (name, *wanted))

    def reset(self, scenario: str) -> None:
        """Put the table in the state ``scenario`` starts from (not timed)."""
        self._execute(f"TRUNCATE TABLE {TABLE}")
        snapshot = f"bench_rows_{scenario}"
        self._execute(
            f"INSERT INTO {TABLE} ({COLUMN}) SELECT {COLUMN} FROM {snapshot} ORDER BY seq"
        )

    def count(self) -> int:
        return int(self._execute(f"SELECT COUNT(*) FROM {TABLE}")[0][0])

    def server_version(self) -> str:
        return str(self._execute("SELECT VERSION()")[0][0])
