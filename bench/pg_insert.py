"""How to send a batch of ids to PostgreSQL: measured, not guessed.

Four ways a batch of new ids can reach a table with a UNIQUE column, each committing per batch
of 5,000 as idsync does, on a fresh table each time:

- ``straight``: ``COPY`` the batch into the table itself (what idsync sends first: the ids were
  missing when it read the table, and it holds the lock; a conflict makes it undo the copy and
  take the ``copy`` way);
- ``unnest``: ``INSERT … SELECT x FROM unnest(%s::text[]) ON CONFLICT DO NOTHING``, one
  statement per batch;
- ``copy``: ``COPY`` the batch into a temporary table, then ``INSERT … SELECT … ON CONFLICT DO
  NOTHING`` from it (two statements; idsync's careful way);
- ``executemany``: one ``INSERT … VALUES (%s) ON CONFLICT DO NOTHING`` per id, pipelined by
  psycopg.

``python -m bench.pg_insert`` (the local server of ``dev/services up postgres``, or
``IDSYNC_TEST_POSTGRES_URL``) writes ``bench/results/pg_insert.md`` and ``.json``: the median of
three runs of each, at 10k and 100k ids.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from bson import ObjectId

URL = os.environ.get("IDSYNC_TEST_POSTGRES_URL", "postgresql://idsync:idsync@127.0.0.1:35432/maas")
OUT = Path(__file__).resolve().parent / "results"
BATCH = 5000
SIZES = (10_000, 100_000)
REPEAT = 3

Conn = psycopg.Connection[tuple[Any, ...]]


def straight(conn: Conn, batch: list[str]) -> None:
    with conn.cursor().copy("COPY t (c) FROM STDIN") as pipe:
        for text in batch:
            pipe.write_row((text,))


def unnest(conn: Conn, batch: list[str]) -> None:
    conn.execute(
        "INSERT INTO t (c) SELECT x FROM unnest(%s::text[]) AS u(x) ON CONFLICT DO NOTHING",
        (batch,),
    )


def copy(conn: Conn, batch: list[str]) -> None:
    conn.execute("CREATE TEMPORARY TABLE IF NOT EXISTS incoming (c text) ON COMMIT DELETE ROWS")
    with conn.cursor().copy("COPY incoming (c) FROM STDIN") as pipe:
        for text in batch:
            pipe.write_row((text,))
    conn.execute("INSERT INTO t (c) SELECT c FROM incoming ON CONFLICT DO NOTHING")


def executemany(conn: Conn, batch: list[str]) -> None:
    conn.cursor().executemany(
        "INSERT INTO t (c) VALUES (%s) ON CONFLICT DO NOTHING", [(text,) for text in batch]
    )


WAYS: dict[str, Callable[[Conn, list[str]], None]] = {
    "straight": straight,
    "unnest": unnest,
    "copy": copy,
    "executemany": executemany,
}


def timed(way: Callable[[Conn, list[str]], None], ids: list[str], database: str) -> float:
    with psycopg.connect(URL.rsplit("/", 1)[0] + "/" + database) as conn:
        conn.execute('DROP TABLE IF EXISTS t; CREATE TABLE t (c text COLLATE "C" NOT NULL UNIQUE)')
        conn.commit()
        started = time.perf_counter()
        for start in range(0, len(ids), BATCH):
            way(conn, ids[start : start + BATCH])
            conn.commit()
        elapsed = time.perf_counter() - started
        [(rows,)] = conn.execute("SELECT count(*) FROM t").fetchall()
        assert rows == len(ids), (rows, len(ids))
    return elapsed


def main() -> None:
    database = f"idsync_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        version = admin.execute("SHOW server_version").fetchall()[0][0]
    results: dict[str, Any] = {"server": f"PostgreSQL {version}", "batch": BATCH, "cells": []}
    try:
        for size in SIZES:
            ids = [str(ObjectId()) for _ in range(size)]
            for name, way in WAYS.items():
                seconds = [timed(way, ids, database) for _ in range(REPEAT)]
                median = statistics.median(seconds)
                cell = {"ids": size, "way": name, "seconds": seconds, "median_s": median}
                results["cells"].append({**cell, "ids_per_s": size / median})
                print(f"{size:>7} {name:<12} {median:.3f} s  {size / median:,.0f} ids/s")
    finally:
        with psycopg.connect(URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    OUT.mkdir(exist_ok=True)
    (OUT / "pg_insert.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Sending a batch of ids to PostgreSQL",
        "",
        f"{results['server']}, local; batches of {BATCH:,} ids committed one by one into",
        "a fresh table with a UNIQUE text column; median of three runs",
        "(`python -m bench.pg_insert`).",
        "",
        "| ids | way | median | ids/s |",
        "| ---: | --- | ---: | ---: |",
    ]
    for cell in results["cells"]:
        lines.append(f"| {cell['ids']:,} | {cell['way']} | {cell['median_s']:.3f} s |"
                     f" {cell['ids_per_s']:,.0f} |")  # fmt: skip
    (OUT / "pg_insert.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
