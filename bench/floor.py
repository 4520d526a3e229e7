"""The floor: what the two servers allow, in three bare parts, each timed on its own.

1. ``mongo``: read only ``_id`` of every document, as fast as the server hands it out: natural
   order (the fastest plan on both test servers), 10,000 per batch, raw BSON batches that the
   client never decodes (only their length is counted);
2. ``mysql``: read the whole target column through a server-side cursor (SSCursor), 10,000 rows
   per fetch, without keeping them;
3. ``insert``: insert the ids that are missing (computed beforehand, not timed) with
   ``executemany`` (one multi-row INSERT per 10,000 ids), committing each batch.

On a PostgreSQL target (a ``postgresql://`` URL) the column is read through a named
(server-side) cursor and the missing ids are sent with ``COPY … FROM STDIN``, 10,000 per
transaction: the bulk path PostgreSQL has, with nothing to skip (the missing ids are known).

A sync needs at least the first two and, when ids are missing, the third; no tool on these servers
beats their sum, and no tool run as a fresh process beats this process (start Python, import the
drivers, connect, the parts, exit). Printed as one JSON object: wall and CPU seconds of each part,
the counts, and the moment both connections were ready (so the runner can tell the fixed cost of
starting a process).

Usage: ``IDSYNC_MONGO_URI=… IDSYNC_MYSQL_URL=… python -m bench.floor [--missing FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import MySQLdb.cursors
from pymongo import MongoClient

from bench.conn import mongo_database, mysql_connect

BATCH = 10_000
TABLE, COLUMN = "cm_cluster_id", "cluster_id"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(part: Callable[[], int]) -> dict[str, float]:
    """Run one part; its wall and CPU seconds and the count it returns."""
    wall, cpu = time.perf_counter(), _cpu()
    count = part()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": _cpu() - cpu, "count": count}


def count_documents(raw: bytes) -> int:
    """Documents in a raw batch: walk the length prefixes, decode nothing."""
    offset = count = 0
    while offset < len(raw):
        offset += int.from_bytes(raw[offset : offset + 4], "little")
        count += 1
    return count


def read_mongo_ids(client: MongoClient[dict[str, Any]], database: str) -> int:
    coll = client[database]["cluster_trips"]
    batches = coll.find_raw_batches({}, {"_id": 1}, batch_size=BATCH)
    return sum(count_documents(cast("bytes", raw)) for raw in batches)


def read_mysql_ids(conn: Any) -> int:
    cur = conn.cursor(MySQLdb.cursors.SSCursor)
    cur.execute(f"SELECT `{COLUMN}` FROM `{TABLE}`")
    rows = 0
    while batch := cur.fetchmany(BATCH):
        rows += len(batch)
    cur.close()
    return rows


def insert_ids(conn: Any, ids: list[str]) -> int:
    cur = conn.cursor()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        cur.executemany(f"INSERT INTO `{TABLE}` (`{COLUMN}`) VALUES (%s)", [(i,) for i in chunk])
        conn.commit()
    return len(ids)


def read_pg_ids(conn: Any) -> int:
    rows = 0
    with conn.cursor(name="floor") as cur:
        cur.execute(f'SELECT "{COLUMN}" FROM "{TABLE}"')
        while batch := cur.fetchmany(BATCH):
            rows += len(batch)
    conn.commit()
    return rows


def copy_pg_ids(conn: Any, ids: list[str]) -> int:
    cur = conn.cursor()
    for start in range(0, len(ids), BATCH):
        with cur.copy(f'COPY "{TABLE}" ("{COLUMN}") FROM STDIN') as pipe:
            for text in ids[start : start + BATCH]:
                pipe.write_row((text,))
        conn.commit()
    return len(ids)


def target_parts(url: str) -> tuple[Any, Callable[[Any], int], Callable[[Any, list[str]], int]]:
    """A connection to the target and its two parts: read the column, insert ids."""
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg  # only for this target

        return psycopg.connect(url), read_pg_ids, copy_pg_ids
    return mysql_connect(url), read_mysql_ids, insert_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--missing", type=Path, help="ids to insert, one per line")
    args = parser.parse_args()
    missing = args.missing.read_text().split() if args.missing else []
    uri = os.environ["IDSYNC_MONGO_URI"]
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    client.admin.command("ping")
    conn, read_target, insert = target_parts(os.environ["IDSYNC_MYSQL_URL"])
    ready_at = time.time()
    parts = {
        "mongo": timed(lambda: read_mongo_ids(client, mongo_database(uri))),
        "mysql": timed(lambda: read_target(conn)),  # the target's read, whichever server
    }
    if missing:
        parts["insert"] = timed(lambda: insert(conn, missing))
    conn.close()
    print(json.dumps({"ready_at": ready_at, "parts": parts}), flush=True)
    # Leave as idsync does, without waiting ~0.5 s for the driver's monitor threads: the
    # process's wall time is then start-up, the parts, and nothing else.
    os._exit(0)


if __name__ == "__main__":
    main()
