"""Latency of `idsync watch`: from a document's insert in MongoDB to its row visible in MySQL.

For each way of following (change stream on mongo-java-server, polling every second on
FerretDB and on mongo-java-server), the real daemon runs in its own process while this one
inserts documents and watches the target table:

- steady: ``--inserts`` single inserts at ``--rate`` per second; latency per document is from
  the acknowledged insert to the moment its row was first seen;
- bursts: ``--bursts`` times an ``insert_many`` of ``--burst`` documents, a few seconds apart;
  "absorbed" is from the acknowledged ``insert_many`` to the burst's last row seen, and the
  latency per document is from the start of the ``insert_many`` call.

Rows are seen by polling the table's auto-increment key every ~5 ms from a thread, so every
figure carries up to ~5 ms of observation delay. Results go to ``--out`` as
``watch_latency.json`` (every figure) and ``watch_latency.md`` (the table in the README).

Usage: ``python -m bench.watch_latency`` (servers from ``dev/services up all``; a private
mongo-java-server is started from the same launcher unless ``--mongo-java URI`` is given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import MySQLdb
from bson import ObjectId
from pymongo import MongoClient

from idsync.config import MySQLURL

ROOT = Path(__file__).resolve().parent.parent
JAR = ROOT / ".local" / "bin" / "mongo-java-server-launcher.jar"
MYSQL_URL = os.environ.get("IDSYNC_MYSQL_URL", "mysql://idsync:idsync@127.0.0.1:33306/maas")
FERRETDB_URI = "mongodb://127.0.0.1:27018/"


@dataclass
class Scenario:
    name: str
    mode: str
    mongo: str
    steady_ms: list[float] = field(default_factory=list)
    burst_ms: list[float] = field(default_factory=list)
    absorbed_s: list[float] = field(default_factory=list)
    insert_many_s: list[float] = field(default_factory=list)
    exit_code: int | None = None


def _with_db(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


def _mysql(url: str, database: str | None = None) -> Any:
    u = MySQLURL.parse(url)
    return MySQLdb.connect(
        host=u.host, port=u.port, user=u.user, password=u.password,
        database=database or u.database, charset="utf8mb4", autocommit=True,
    )  # fmt: skip


class Observer:
    """Notes when each id first appears in the target table."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.seen, self.last = conn, dict[str, float](), 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        cur = self.conn.cursor()
        while not self.stop.is_set():
            cur.execute(
                "SELECT id, cluster_id FROM cm_cluster_id WHERE id > %s ORDER BY id", (self.last,)
            )
            now = time.perf_counter()
            for row_id, text in cur.fetchall():
                self.seen.setdefault(text, now)
                self.last = max(self.last, int(row_id))
            time.sleep(0.005)

    def wait_for(self, ids: list[str], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while any(i not in self.seen for i in ids):
            if time.monotonic() > deadline:
                missing = sum(i not in self.seen for i in ids)
                raise RuntimeError(f"{missing} of {len(ids)} ids never arrived")
            time.sleep(0.01)


@contextmanager
def private_mongo_java() -> Iterator[str]:
    """A mongo-java-server of the benchmark's own: a fresh oplog, on a free port."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        ["java", "-Xmx2g", "-jar", str(JAR), "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    uri = f"mongodb://127.0.0.1:{port}/"
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=60_000)
        with client:
            client.admin.command("ping")
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def databases(mongo: str) -> Iterator[tuple[str, str]]:
    """A fresh MongoDB and MySQL database pair (URIs), dropped afterwards."""
    name = f"idsync_bench_watch_{uuid.uuid4().hex[:8]}"
    admin = _mysql(MYSQL_URL)
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    client: MongoClient[dict[str, Any]] = MongoClient(mongo)
    try:
        yield _with_db(mongo, name), _with_db(MYSQL_URL, name)
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
        client.drop_database(name)
        client.close()


def _idsync(*args: str, mongo: str, mysql: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IDSYNC_MONGO_URI": mongo, "IDSYNC_MYSQL_URL": mysql}
    env.pop("IDSYNC_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "idsync", *args], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _following(conn: Any, timeout: float = 60.0) -> None:
    """Until the daemon has saved its first checkpoint: it follows from then on."""
    deadline = time.monotonic() + timeout
    cur = conn.cursor()
    while time.monotonic() < deadline:
        cur.execute("SHOW TABLES LIKE 'idsync_state'")
        if cur.fetchall():
            cur.execute("SELECT COUNT(*) FROM idsync_state")
            if cur.fetchone()[0]:
                return
        time.sleep(0.05)
    raise RuntimeError("the daemon did not start following")


def steady(coll: Any, observer: Observer, count: int, rate: float) -> list[float]:
    acked: dict[str, float] = {}
    start = time.perf_counter()
    for n in range(count):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        oid = ObjectId()
        coll.insert_one({"_id": oid, "trips": []})
        acked[str(oid)] = time.perf_counter()
    observer.wait_for(list(acked))
    return [(observer.seen[i] - t) * 1000 for i, t in acked.items()]


def bursts(coll: Any, observer: Observer, size: int, count: int) -> tuple[list[float], ...]:
    """(latency per document in ms, absorbed per burst in s, insert_many duration in s)."""
    latencies: list[float] = []
    absorbed: list[float] = []
    inserting: list[float] = []
    for _ in range(count):
        time.sleep(3.0)  # idle first: each burst meets a follower that is waiting
        ids = [ObjectId() for _ in range(size)]
        called = time.perf_counter()
        coll.insert_many([{"_id": oid, "trips": []} for oid in ids])
        acked = time.perf_counter()
        inserting.append(acked - called)
        texts = [str(oid) for oid in ids]
        observer.wait_for(texts)
        absorbed.append(max(observer.seen[t] for t in texts) - acked)
        latencies += [(observer.seen[t] - called) * 1000 for t in texts]
    return latencies, absorbed, inserting


def run_scenario(scenario: Scenario, args: argparse.Namespace) -> None:
    with databases(scenario.mongo) as (mongo, mysql):
        init = _idsync("init", mongo=mongo, mysql=mysql)
        init.wait(60)
        daemon = _idsync(
            "watch", "--mode", scenario.mode, "--poll-interval", str(args.poll_interval),
            "--no-log-ids", "--log-level", "warning", mongo=mongo, mysql=mysql,
        )  # fmt: skip
        conn = _mysql(mysql, database=urlsplit(mysql).path.lstrip("/"))
        observer = Observer(conn)
        try:
            _following(conn)
            observer.thread.start()
            client: MongoClient[dict[str, Any]] = MongoClient(mongo)
            with client:
                coll = client.get_default_database()["cluster_trips"]
                scenario.steady_ms = steady(coll, observer, args.inserts, args.rate)
                scenario.burst_ms, scenario.absorbed_s, scenario.insert_many_s = bursts(
                    coll, observer, args.burst, args.bursts
                )
        finally:
            observer.stop.set()
            daemon.send_signal(signal.SIGTERM)
            scenario.exit_code = daemon.wait(60)
            observer.thread.join(5)
            conn.close()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(s: Scenario) -> dict[str, Any]:
    return {
        "scenario": s.name,
        "steady_n": len(s.steady_ms),
        "steady_ms": {q: round(pct(s.steady_ms, q), 1) for q in (50, 95, 99, 100)},
        "burst_n": len(s.burst_ms),
        "burst_ms": {q: round(pct(s.burst_ms, q), 1) for q in (50, 95, 99, 100)},
        "absorbed_s": [round(a, 3) for a in s.absorbed_s],
        "insert_many_s": [round(a, 3) for a in s.insert_many_s],
        "exit_code": s.exit_code,
    }


def machine() -> dict[str, Any]:
    conn = _mysql(MYSQL_URL)
    cur = conn.cursor()
    cur.execute("SELECT VERSION()")
    mariadb = cur.fetchone()[0]
    conn.close()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "mysql": mariadb,
        "load_average_before": os.getloadavg(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def markdown(results: list[dict[str, Any]], meta: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "# `idsync watch`: insert in MongoDB → row visible in MySQL",
        "",
        f"{meta['cpus']} CPUs, Python {meta['python']}, MariaDB {meta['mysql']}, "
        f"load average before {meta['load_average_before'][0]:.2f}; {meta['date']}.",
        f"Steady: {args.inserts:,} single inserts at {args.rate:g}/s. Bursts: {args.bursts} of "
        f"{args.burst:,} documents in one insert_many. Polling every {args.poll_interval:g} s.",
        "",
        "| scenario | steady p50 | p95 | p99 | max | burst p50 | p95 | p99 | insert_many took"
        " | absorbed after it |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        st, bu = r["steady_ms"], r["burst_ms"]
        absorbed = ", ".join(f"{a:.2f}" for a in r["absorbed_s"])
        inserting = ", ".join(f"{a:.2f}" for a in r["insert_many_s"])
        lines.append(
            f"| {r['scenario']} | {st[50]:.0f} ms | {st[95]:.0f} ms | {st[99]:.0f} ms "
            f"| {st[100]:.0f} ms | {bu[50]:.0f} ms | {bu[95]:.0f} ms | {bu[99]:.0f} ms "
            f"| {inserting} s | {absorbed} s |"
        )
    lines += [
        "",
        "Steady latency: from the acknowledged insert_one. Burst latency: from the start of the "
        "insert_many call. Absorbed: from the acknowledged insert_many to its last row in MySQL.",
        "Rows are observed every ~5 ms, so each figure may be up to ~5 ms late.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inserts", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--mongo-java", metavar="URI", help="use this change-stream server")
    parser.add_argument("--ferretdb", metavar="URI", default=FERRETDB_URI)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    meta = machine()
    with _mongo_java(args.mongo_java) as java:
        scenarios = [
            Scenario("change stream (mongo-java-server)", "change-stream", java),
            Scenario(f"polling every {args.poll_interval:g} s (FerretDB)", "poll", args.ferretdb),
            Scenario(f"polling every {args.poll_interval:g} s (mongo-java-server)", "poll", java),
        ]
        results = []
        for scenario in scenarios:
            print(f"{scenario.name} …", flush=True)
            run_scenario(scenario, args)
            results.append(summary(scenario))
            print(json.dumps(results[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "machine": meta,
        "parameters": {k: str(v) for k, v in vars(args).items() if k != "out"},
        "results": results,
        # Every steady latency (a few thousand numbers); bursts only as the percentiles above.
        "steady_ms": {s.name: [round(v, 1) for v in s.steady_ms] for s in scenarios},
    }
    (args.out / "watch_latency.json").write_text(json.dumps(data, indent=1) + "\n")
    (args.out / "watch_latency.md").write_text(markdown(results, meta, args))
    print((args.out / "watch_latency.md").read_text())


@contextmanager
def _mongo_java(uri: str | None) -> Iterator[str]:
    if uri:
        yield uri
        return
    with private_mongo_java() as private:
        yield private


if __name__ == "__main__":
    main()
