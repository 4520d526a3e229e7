"""idsync and the floor on each SQL target, side by side: MariaDB and PostgreSQL.

One source, a private mongo-java-server holding ``{_id}`` documents: it hands out ids fast, so
the target's side shows. At each size, three scenarios: (a) a first sync into an empty table,
(b) a seeded random 1% of the ids missing, (c) in sync. Each target gets a fresh database of its
own, its table made by ``idsync init`` and put in the scenario's state before every run (not
timed). Both contenders run as fresh processes (``bench/measure.py``): ``idsync run --json
--no-log-ids``, and the floor (``bench/floor.py``: the bare reads and bulk insert of each server).

``python -m bench.sql_targets [--sizes 100000 1000000] [--repeat 3] [--out DIR]`` writes
``sql_targets.md`` and ``sql_targets.json`` into ``bench/results/`` (or ``DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import MySQLdb
import psycopg

from bench import contenders, env
from bench.conn import MySQLAddress, with_path
from bench.datagen import cluster_ids, load
from bench.run import say, settle
from bench.servers import PrivateMongoJava, heap_mb, mongo_client, server_version, trim_oplog

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {
    "MariaDB": os.environ.get("IDSYNC_MYSQL_URL", "mysql://idsync:idsync@127.0.0.1:33306/maas"),
    "PostgreSQL": os.environ.get(
        "IDSYNC_TEST_POSTGRES_URL", "postgresql://idsync:idsync@127.0.0.1:35432/maas"
    ),
}
SCENARIOS = {"a": "first sync", "b": "1% missing", "c": "in sync"}
# The per-id log lines are the replaced job's habit, not part of a sync: leave them out here.
IDSYNC_FLAGS = ("--no-log-ids",)
CHUNK = 10_000
PARTS = {"mongo": "the `_id`s read", "mysql": "the column read", "insert": "the insert"}
TIMES = "\u00d7"


class Table:
    """``cm_cluster_id`` in a database of the bench's own on one server, set to a scenario."""

    def __init__(self, name: str, server_url: str) -> None:
        self.name, self.server_url = name, server_url
        self.postgres = server_url.startswith(("postgresql://", "postgres://"))
        # A new name each time: the bench never drops a database it did not make.
        self.database = f"idsync_bench_targets_{uuid.uuid4().hex[:8]}"
        self.url = with_path(server_url, self.database)
        admin = self._connect(server_url, autocommit=True)
        try:
            self.version = self._version(admin)
            self._rows(admin, f"CREATE DATABASE {self.database}")
        finally:
            admin.close()

    def _version(self, admin: Any) -> str:
        sql = "SHOW server_version" if self.postgres else "SELECT VERSION()"
        raw = str(self._rows(admin, sql)[0][0])  # "15.18 (Debian …)", "10.11.19-MariaDB-…"
        name, sep = ("PostgreSQL", " ") if self.postgres else ("MariaDB", "-")
        return f"{name} {raw.partition(sep)[0]}"

    def _connect(self, url: str, autocommit: bool = False) -> Any:
        if self.postgres:
            return psycopg.connect(url, autocommit=autocommit)
        addr = MySQLAddress.parse(url)
        conn = MySQLdb.connect(
            host=addr.host, port=addr.port, user=addr.user, password=addr.password,
            database=addr.database, charset="utf8mb4",
        )  # fmt: skip
        conn.autocommit(autocommit)
        return conn

    @staticmethod
    def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur.fetchall()) if cur.description else []

    def fill(self, ids: list[str]) -> None:
        """Empty the table, then bulk load exactly ``ids`` (each server's fast way)."""
        conn = self._connect(self.url)
        try:
            self._rows(conn, "TRUNCATE cm_cluster_id")
            conn.commit()
            cur = conn.cursor()
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                if self.postgres:
                    with cur.copy("COPY cm_cluster_id (cluster_id) FROM STDIN") as pipe:
                        for text in chunk:
                            pipe.write_row((text,))
                else:
                    sql = "INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)"
                    cur.executemany(sql, [(text,) for text in chunk])
                conn.commit()
        finally:
            conn.close()

    def holds(self, ids: list[str]) -> bool:
        """Whether the table holds exactly ``ids`` (distinct), each once."""
        conn = self._connect(self.url)
        try:
            rows = [row[0] for row in self._rows(conn, "SELECT cluster_id FROM cm_cluster_id")]
        finally:
            conn.close()
        return len(rows) == len(ids) and set(rows) == set(ids)

    def init(self, mongo_uri: str) -> None:
        """The table as ``idsync init`` makes it on this server."""
        idsync = str(Path(sys.executable).with_name("idsync"))
        process_env = contenders.environment(mongo_uri, self.url)
        subprocess.run([idsync, "init"], env=process_env, check=True, capture_output=True)

    def drop(self) -> None:
        admin = self._connect(self.server_url, autocommit=True)
        try:
            force = " WITH (FORCE)" if self.postgres else ""  # idsync may still hold a session
            self._rows(admin, f"DROP DATABASE IF EXISTS {self.database}{force}")
        finally:
            admin.close()


def scenario_rows(ids: list[str], scenario: str, seed: int) -> tuple[list[str], list[str]]:
    """(rows the table holds before the run, ids a run must insert)."""
    if scenario == "a":
        return [], ids
    if scenario == "c":
        return ids, []
    missing = set(random.Random(seed).sample(ids, len(ids) // 100))
    return [i for i in ids if i not in missing], sorted(missing)


def measure_target(table: Table, uri: str, n: int, repeat: int) -> list[dict[str, Any]]:
    """Every scenario on one target: idsync and the floor in turn, ``repeat`` times each."""
    ids, cells = [str(oid) for oid in cluster_ids(n)], []
    process_env = contenders.environment(uri, table.url)
    with tempfile.TemporaryDirectory(prefix="idsync-bench-") as work:
        for scenario in SCENARIOS:
            held, missing = scenario_rows(ids, scenario, seed=n)
            runs: dict[str, list[dict[str, Any]]] = {"idsync": [], "floor": []}
            for _ in range(repeat):
                for contender, done in runs.items():
                    table.fill(held)
                    busy = settle()  # the load's background work would slow the run
                    figures = contenders.run(
                        contender, process_env, Path(work), missing, IDSYNC_FLAGS
                    )
                    if contender == "idsync" and not table.holds(ids):
                        raise contenders.RunFailed(f"{table.name} {n:,} ({scenario}): not exact")
                    done.append({**figures.as_dict(), "busy_before_pct": busy})
            cells.append(summarize(table.name, n, scenario, runs))
            say(f"{table.name} {n:,} ({scenario}): {cells[-1]['ratio']:.2f}x the floor")
    return cells


def summarize(target: str, n: int, scenario: str, runs: dict[str, Any]) -> dict[str, Any]:
    """A cell: medians of each contender's figures, the floor's parts, idsync's phases."""
    idsync, floor = runs["idsync"], runs["floor"]

    def med(rows: list[dict[str, Any]], get: Any) -> float:
        return float(statistics.median(get(row) for row in rows))

    cell: dict[str, Any] = {"target": target, "n": n, "scenario": scenario}
    for contender, rows in runs.items():
        for name in ("wall_s", "cpu_s", "rss_mb"):
            cell[f"{contender}_{name}"] = med(rows, lambda r, k=name: r[k])
    cell["ratio"] = cell["idsync_wall_s"] / cell["floor_wall_s"]
    cell["floor_fixed_s"] = med(floor, lambda r: r["fixed_s"])
    cell["floor_parts_s"] = {
        part: med(floor, lambda r, p=part: r["parts"].get(p, {}).get("wall_s", 0.0))
        for part in PARTS
    }
    phases = dict.fromkeys(name for row in idsync for name in row.get("phases", {}))
    cell["idsync_phases_s"] = {
        p: med(idsync, lambda r, p=p: r["phases"].get(p, 0.0)) for p in phases
    }
    cell["idsync_outside_s"] = med(idsync, lambda r: r["wall_s"] - r["reported_s"])
    cell["idsync_bound_by"] = Counter(r.get("bound_by") for r in idsync).most_common(1)[0][0]
    return {**cell, "idsync_runs": idsync, "floor_runs": floor}


def measure_size(mongo_uri: str, tables: list[Table], n: int, repeat: int) -> list[dict[str, Any]]:
    """Load ``n`` ids into the source, measure every target, then drop them again."""
    database = f"idsync_bench_ids_{n}"
    uri, cells = with_path(mongo_uri, database), []
    with mongo_client(uri) as client:
        try:
            coll = client[database]["cluster_trips"]
            load(coll, n, shape="ids", after_chunk=lambda: trim_oplog(client))
            for table in tables:
                table.init(uri)
                cells += measure_target(table, uri, n, repeat)
        finally:
            client.drop_database(database)
            trim_oplog(client)
    return cells


def reading(data: dict[str, Any]) -> list[str]:
    """What bounds each scenario on each target, said from this run's figures."""
    at = {(c["target"], c["n"], c["scenario"]): c for c in data["cells"]}
    big, small, said = max(data["sizes"]), min(data["sizes"]), []
    for scenario, label in SCENARIOS.items():
        clauses = []
        for target in TARGETS:
            c = at[target, big, scenario]
            parts = c["floor_parts_s"]
            shown = ", ".join(f"{PARTS[p]} {s:.2f} s" for p, s in parts.items())
            clauses.append(
                f"on {target} by {PARTS[max(parts, key=parts.__getitem__)]} (floor: {shown}),"
                f" idsync at {c['ratio']:.2f}{TIMES} the floor (its report: bound by the"
                f" {c['idsync_bound_by']}, {c['idsync_phases_s'].get('diff_s', 0):.2f} s diffing)"
            )
        said.append(f"- ({scenario}) {label} at {big:,} ids is bounded " + "; ".join(clauses) + ".")
    starts = [at[t, small, "c"] for t in TARGETS]
    fixed = ", ".join(f"{c['target']} {c['floor_fixed_s']:.2f} s" for c in starts)
    outside = ", ".join(f"{c['target']} {c['idsync_outside_s']:.2f} s" for c in starts)
    said.append(
        f"- At {small:,} ids in (c) start-up weighs: the floor's process takes {fixed} to start"
        f" Python, import both drivers and connect; idsync's spends {outside} outside the"
        " duration its report gives (start, imports, exit)."
    )
    rss = {
        t: " / ".join(f"{at[t, big, s]['idsync_rss_mb']:.0f}" for s in SCENARIOS) for t in TARGETS
    }
    said.append(
        f"- idsync's peak RSS at {big:,} ids in (a) / (b) / (c) is "
        + "; ".join(f"{t} {mb} MB" for t, mb in rss.items())
        + ": (a) reads an empty column, (b) and (c) the whole column besides the source's ids."
    )
    return said


def render(data: dict[str, Any]) -> str:
    command = f"python -m bench.sql_targets --sizes {' '.join(map(str, data['sizes']))}"
    lines = [
        "# idsync and the floor on each SQL target",
        "",
        f"{', '.join(data['servers'])}, all local; {data['machine']['cpus']} cores; `{{_id}}`"
        f" documents; idsync {data['software']['idsync']} as `idsync run --json"
        f" {' '.join(data['idsync_flags'])}`; medians of {data['repeat']} fresh processes per"
        f" cell (`{command} --repeat {data['repeat']}`, {data['duration_s'] / 60:.0f} min).",
        "",
        "| target | N | scenario | idsync wall s | floor wall s | idsync / floor"
        " | idsync CPU s | idsync peak RSS MB |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = {t: i for i, t in enumerate(TARGETS)}
    for c in sorted(data["cells"], key=lambda c: (order[c["target"]], c["n"], c["scenario"])):
        lines.append(
            f"| {c['target']} | {c['n']:,} | ({c['scenario']}) {SCENARIOS[c['scenario']]}"
            f" | {c['idsync_wall_s']:.2f} | {c['floor_wall_s']:.2f} | {c['ratio']:.2f}{TIMES}"
            f" | {c['idsync_cpu_s']:.2f} | {c['idsync_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "What bounds each scenario, from this run's medians: the floor's parts are its own"
        " timers, idsync's split is the `phases` of its JSON report (`sql_targets.json` has both):",
        "",
        *reading(data),
    ]
    return "\n".join(lines) + "\n"


def drop_all(tables: list[Table]) -> None:
    """Drop every database the bench made; one that fails is said, and the others still go."""
    for table in tables:
        try:
            table.drop()
        except Exception as exc:  # said, not raised: it must not hide the run's own error
            say(f"could not drop {table.name} database {table.database}: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results go")
    args = parser.parse_args()
    begun, tables = time.time(), []
    data: dict[str, Any] = {"sizes": args.sizes, "repeat": args.repeat, "cells": []}
    data.update(idsync_flags=IDSYNC_FLAGS, machine=env.machine(), software=env.software())
    log = RESULTS.parent / "out" / "sql_targets_mongo.log"
    with PrivateMongoJava(heap_mb("ids", max(args.sizes)), log) as mongo:
        try:
            for name, url in TARGETS.items():
                tables.append(Table(name, url))
            mongo_java = server_version(mongo.uri, "mongo-java")["version"].split()[0]
            data["servers"] = [t.version for t in tables] + [f"mongo-java-server {mongo_java}"]
            for n in args.sizes:
                data["cells"] += measure_size(mongo.uri, tables, n, args.repeat)
        finally:
            drop_all(tables)
    data["duration_s"] = round(time.time() - begun)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sql_targets.json").write_text(json.dumps(data, indent=2) + "\n")
    (args.out / "sql_targets.md").write_text(render(data))


if __name__ == "__main__":
    main()
