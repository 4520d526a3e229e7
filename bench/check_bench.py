"""`idsync check`: the fast path against `--exact`, at 100,000 and 1,000,000 ids.

For each size and MongoDB server, three states of the target (in sync; 10 ids missing; 10
orphans) and both methods: wall time, ids and bytes read from each server, client CPU, and what
was found. Documents are tiny (``{_id}`` only) so that a million load in seconds: the fast path
never reads documents, and the exact path reads only ``_id``, so document size changes the
servers' own scan time, not what crosses the network.

Servers: FerretDB (``dev/services up``), and a private mongo-java-server started here from the
launcher that ``dev/services up mongo-java`` builds (in memory, with a heap for a million ids;
the shared one is left alone), stopped at the end. MariaDB from ``dev/services``.

    python -m bench.check_bench [--sizes 100000 1000000] [--servers ferretdb mongo-java]

Writes bench/results/check.json and bench/results/check.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import MySQLdb
from pymongo import MongoClient

from bench.datagen import cluster_ids
from idsync.check.checker import CheckOptions, check
from idsync.config import Job, MySQLURL, Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
JAR = ROOT / ".local" / "bin" / "mongo-java-server-launcher.jar"
JAVA_PORT = int(os.environ.get("BENCH_CHECK_MONGO_JAVA_PORT", "27039"))
FERRETDB_URI = os.environ.get("BENCH_FERRETDB_URI", "mongodb://127.0.0.1:27018/")
MYSQL_URL = os.environ.get("IDSYNC_MYSQL_URL", "mysql://idsync:idsync@127.0.0.1:33306/maas")
DATABASE = "idsync_check_bench"
PLANTED = 10


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@contextmanager
def private_mongo_java() -> Iterator[str]:
    """A mongo-java-server of our own with a heap for a million ids; stopped by its pid."""
    if not JAR.is_file():
        raise SystemExit("build the launcher first: dev/services up mongo-java")
    if not _free(JAVA_PORT):
        raise SystemExit(f"port {JAVA_PORT} is taken: set BENCH_CHECK_MONGO_JAVA_PORT")
    log = (ROOT / ".local" / "check-bench-mongo-java.log").open("w")
    process = subprocess.Popen(
        ["java", "-Xmx8g", "-jar", str(JAR), "127.0.0.1", str(JAVA_PORT)],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while _free(JAVA_PORT):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("mongo-java-server did not start: see .local/")
            time.sleep(0.2)
        yield f"mongodb://127.0.0.1:{JAVA_PORT}/"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _mysql() -> Any:
    url = MySQLURL.parse(MYSQL_URL)
    return MySQLdb.connect(
        host=url.host, port=url.port, user=url.user, password=url.password, charset="utf8mb4"
    )


class Data:
    """One size loaded on one MongoDB server and in MariaDB, and the planted differences."""

    def __init__(self, mongo_uri: str, n: int) -> None:
        self.n, self.mongo_uri = n, mongo_uri
        self.ids = [str(i) for i in cluster_ids(n)]
        rng = random.Random(n)
        self.missing = rng.sample(self.ids, PLANTED)
        self.orphans = [
            f"{int(text[:8], 16) + 1:08x}{rng.randbytes(8).hex()}"
            for text in rng.sample(self.ids, PLANTED)
        ]
        self.collection = f"ids_{n}"
        self.table = f"ids_{n}"
        self.conn = _mysql()
        self.conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
        self.conn.select_db(DATABASE)

    def settings(self) -> Settings:
        mongo = self.mongo_uri.rstrip("/") + f"/{DATABASE}"
        mysql = MYSQL_URL.rsplit("/", 1)[0] + f"/{DATABASE}"
        return Settings(mongo_uri=mongo, mysql_url=mysql, read_batch_size=50_000)

    def job(self) -> Job:
        return Job(name="bench", collection=self.collection, table=self.table, column="cid")

    def load(self) -> None:
        client: MongoClient[dict[str, Any]] = MongoClient(self.mongo_uri)
        with client:
            coll = client[DATABASE][self.collection]
            if coll.estimated_document_count() != self.n:
                coll.drop()
                oids = cluster_ids(self.n)
                for start in range(0, self.n, 20_000):
                    coll.insert_many([{"_id": o} for o in oids[start : start + 20_000]])
        cur = self.conn.cursor()
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS `{self.table}` (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
            " cid VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,"
            " UNIQUE KEY (cid))"
        )
        cur.execute(f"SELECT COUNT(*) FROM `{self.table}`")
        if cur.fetchone()[0] != self.n:
            cur.execute(f"TRUNCATE `{self.table}`")
            for start in range(0, self.n, 10_000):
                cur.executemany(
                    f"INSERT INTO `{self.table}` (cid) VALUES (%s)",
                    [(i,) for i in self.ids[start : start + 10_000]],
                )
                self.conn.commit()

    def plant(self, state: str) -> None:
        """Leave the target in ``state``: in-sync, missing or orphans."""
        cur = self.conn.cursor()
        cur.executemany(f"DELETE FROM `{self.table}` WHERE cid = %s", [(t,) for t in self.orphans])
        cur.executemany(
            f"INSERT IGNORE INTO `{self.table}` (cid) VALUES (%s)", [(t,) for t in self.missing]
        )
        if state == "missing":
            cur.executemany(
                f"DELETE FROM `{self.table}` WHERE cid = %s", [(t,) for t in self.missing]
            )
        elif state == "orphans":
            cur.executemany(
                f"INSERT INTO `{self.table}` (cid) VALUES (%s)", [(t,) for t in self.orphans]
            )
        self.conn.commit()


def measure(data: Data, exact: bool) -> dict[str, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    report = check(data.job(), data.settings(), CheckOptions(check_exact=exact))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "wall_s": round(wall, 2),
        "client_cpu_s": round(cpu, 2),
        "ids_read_mongodb": report.ids_read_source,
        "ids_read_mysql": report.ids_read_target,
        "bytes_mongodb": report.bytes_read["mongodb"],
        "bytes_mysql": report.bytes_read["mysql"],
        "missing_found": report.missing,
        "orphans_found": report.orphans,
        "status": str(report.status),
        "method_mongodb": str(report.method["source"].method),
        "method_mysql": str(report.method["target"].method),
        "count_s_mongodb": report.count_seconds["mongodb"],
        "count_s_mysql": report.count_seconds["mysql"],
        "bucket_prefix": report.bucket_prefix,
        "buckets_compared": report.buckets_compared,
        "buckets_differing": report.buckets_differing,
    }


def run(servers: list[str], sizes: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for server in servers:
        with _server(server) as uri:
            for n in sizes:
                data = Data(uri, n)
                started = time.perf_counter()
                data.load()
                print(
                    f"{server} {n:,}: loaded in {time.perf_counter() - started:.0f} s", flush=True
                )
                for state in ("in-sync", "missing", "orphans"):
                    data.plant(state)
                    for exact in (False, True):
                        row = {"server": server, "n": n, "state": state}
                        row["method"] = "exact" if exact else "fast"
                        row.update(measure(data, exact))
                        print(json.dumps(row), flush=True)
                        rows.append(row)
                data.plant("in-sync")
                data.conn.close()
    return rows


@contextmanager
def _server(name: str) -> Iterator[str]:
    if name == "ferretdb":
        yield FERRETDB_URI
    else:
        with private_mongo_java() as uri:
            yield uri


NOTES = [
    "- *missing*: 10 ids deleted from the table; *orphans*: 10 rows added that no document has.",
    "- mongo-java-server walks all its documents in Java for every aggregation and every `_id`"
    " range (so the timings say: its counting seconds grow with N and with every split of a"
    " differing bucket). Its wall times are not MongoDB's, where a `$match` on an `_id` range"
    " has index bounds (not measured: the dev services have no MongoDB). Ids and bytes read do"
    " not depend on the server.",
    "- FerretDB cannot count per bucket (no `$toString`, no `$substrBytes`, and no index for"
    " ranges), so its side is read whole in both methods; the fast path still counts on MariaDB"
    " and reads only the differing buckets' rows there.",
]


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:,.2f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# `idsync check`: fast path and `--exact`",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; MariaDB and the"
        " MongoDB servers on loopback; documents are `{_id}` only; one run each (orders of"
        " magnitude). Bytes: from MongoDB the BSON of the reply batches, from MariaDB its"
        " `Bytes_sent` for the session. Written by `python -m bench.check_bench`.",
        "",
        "| server | N | target | method | wall s | of it counting s (MongoDB / MySQL) | client CPU"
        " s | ids read MongoDB | ids read MySQL | MB from MongoDB | MB from MySQL | missing found"
        " | orphans found |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['server']} | {r['n']:,} | {r['state']} | {r['method']} | {r['wall_s']}"
            f" | {r['count_s_mongodb']:.2f} / {r['count_s_mysql']:.2f} | {r['client_cpu_s']}"
            f" | {r['ids_read_mongodb']:,} | {r['ids_read_mysql']:,}"
            f" | {_mb(r['bytes_mongodb'])} | {_mb(r['bytes_mysql'])} | {r['missing_found']}"
            f" | {r['orphans_found']} |"
        )
    return "\n".join([*lines, "", *NOTES]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--servers",
        nargs="+",
        default=["mongo-java", "ferretdb"],
        choices=["mongo-java", "ferretdb"],
    )
    parser.add_argument(
        "--markdown-only", action="store_true", help="rewrite check.md from check.json"
    )
    args = parser.parse_args()
    if args.markdown_only:
        rows = json.loads((RESULTS / "check.json").read_text())
        (RESULTS / "check.md").write_text(markdown(rows))
        return
    rows = run(args.servers, args.sizes)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "check.json").write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / "check.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
