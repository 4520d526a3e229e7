"""`make demo-watch`: `idsync watch` keeping a MySQL table complete while MongoDB changes.

Twice: by change stream (mongo-java-server, IDSYNC_WATCH_MONGO_URI) and by polling every
second (FerretDB, IDSYNC_MONGO_URI). Each part uses databases of its own, dropped at the end:
it starts the daemon with /healthz and /metrics, inserts clusters one by one and then 10,000 at
once, shows when each reached MySQL, and stops the daemon with SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import MySQLdb
from bson import ObjectId
from pymongo import MongoClient

from idsync.config import MySQLURL

MYSQL_URL = os.environ.get("IDSYNC_MYSQL_URL", "mysql://idsync:idsync@127.0.0.1:33306/maas")
PARTS = (
    ("change stream", os.environ.get("IDSYNC_WATCH_MONGO_URI", "mongodb://127.0.0.1:27019/")),
    ("polling", os.environ.get("IDSYNC_MONGO_URI", "mongodb://127.0.0.1:27018/")),
)
HTTP = "127.0.0.1:9464"


def with_db(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


def mysql(database: str | None = None) -> Any:
    u = MySQLURL.parse(MYSQL_URL)
    return MySQLdb.connect(
        host=u.host, port=u.port, user=u.user, password=u.password,
        database=database or u.database, charset="utf8mb4", autocommit=True,
    )  # fmt: skip


def get(path: str) -> str:
    try:
        with urllib.request.urlopen(f"http://{HTTP}{path}", timeout=5) as answer:
            return str(answer.read().decode())
    except OSError as exc:
        return f"({exc})"


def mode() -> str | None:
    try:
        found = json.loads(get("/healthz")).get("mode")
    except ValueError:
        return None
    return str(found) if found else None


def wait(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("demo: timed out; see the daemon's lines above")
        time.sleep(0.005)


def stored(conn: Any, ids: list[str]) -> set[str]:
    cur = conn.cursor()
    marks = ", ".join(["%s"] * len(ids))
    cur.execute(f"SELECT cluster_id FROM cm_cluster_id WHERE cluster_id IN ({marks})", ids)
    return {row[0] for row in cur.fetchall()}


def follow_inserts(coll: Any, conn: Any) -> None:
    print("  inserting 10 clusters, one every 0.3 s:")
    for _ in range(10):
        oid = ObjectId()
        coll.insert_one({"_id": oid, "trips": []})
        began = time.perf_counter()
        wait(lambda oid=oid: stored(conn, [str(oid)]))
        print(f"    {oid} in MySQL after {(time.perf_counter() - began) * 1000:.0f} ms")
        time.sleep(0.3)
    burst = [ObjectId() for _ in range(10_000)]
    coll.insert_many([{"_id": oid, "trips": []} for oid in burst])
    began = time.perf_counter()
    texts = [str(oid) for oid in burst]
    wait(lambda: len(stored(conn, texts)) == len(texts))
    print(f"  a burst of 10,000 clusters: all in MySQL {time.perf_counter() - began:.2f} s later")


def part(title: str, mongo_base: str) -> None:
    name = f"idsync_demo_watch_{int(time.time())}"
    print(f"\n== {title}: {urlsplit(mongo_base).netloc} → MariaDB, databases {name}")
    admin = mysql()
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_base)
    coll = client[name]["cluster_trips"]
    coll.insert_many([{"_id": ObjectId(), "trips": []} for _ in range(5000)])
    env = {**os.environ, "IDSYNC_MONGO_URI": with_db(mongo_base, name)}
    env["IDSYNC_MYSQL_URL"] = with_db(MYSQL_URL, name)
    idsync = [sys.executable, "-m", "idsync"]
    subprocess.run([*idsync, "init"], env=env, check=True)  # noqa: S603 (our own command)
    daemon = subprocess.Popen([*idsync, "watch", "--http", HTTP, "--no-log-ids"], env=env)  # noqa: S603
    conn = mysql(name)
    try:
        wait(lambda: mode() in ("change-stream", "polling"))
        print(f"  GET /healthz → {get('/healthz').strip()}")
        follow_inserts(coll, conn)
        lines = [ln for ln in get("/metrics").splitlines() if ln.startswith("idsync_")]
        wanted = ("_total{", "lag_seconds", "last_success", 'mode{idsync_mode="')
        print("  GET /metrics (some lines):")
        for line in lines:
            if any(w in line for w in wanted) and not line.endswith(" 0.0"):
                print(f"    {line}")
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
        print(f"  SIGTERM → exit code {code}")
        conn.close()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
        client.drop_database(name)
        client.close()


def main() -> None:
    for title, uri in PARTS:
        part(title, uri)


if __name__ == "__main__":
    main()
