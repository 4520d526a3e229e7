"""Realistic `cluster_trips` documents from a fixed seed, loaded fast and reused when present.

A document is one cluster: ~2 KB, an array of ~20 trips, each with its own ObjectId, a user id,
start and end points and times, and a mode. The same seed gives the same ids on every machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import struct
import sys
from collections.abc import Callable, Iterator
from typing import Any

import MySQLdb
from bson import ObjectId
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from idsync.config import MySQLURL

MODES = ("walk", "bike", "bus", "car", "metro", "scooter")
EPOCH = 1_700_000_000  # ids start in Nov 2023 and advance about one second per cluster
MANIFEST = "_idsync_manifest"


def cluster_ids(n: int, seed: int = 7) -> list[ObjectId]:
    """The ids of the first ``n`` clusters of a seed, in creation (and `_id`) order."""
    rng = random.Random(seed)
    return [ObjectId(struct.pack(">I", EPOCH + i) + rng.randbytes(8)) for i in range(n)]


def _point(rng: random.Random, at: int) -> dict[str, Any]:
    return {
        "lat": round(25.0 + rng.random(), 6),
        "lng": round(121.3 + rng.random(), 6),
        "time": datetime.datetime.fromtimestamp(at, datetime.UTC),
    }


def documents(n: int, seed: int = 7, trips: int = 20) -> Iterator[dict[str, Any]]:
    """``n`` cluster documents; ids equal :func:`cluster_ids` for the same seed."""
    rng = random.Random(seed * 7919)
    for number, oid in enumerate(cluster_ids(n, seed)):
        start = EPOCH + number
        yield {
            "_id": oid,
            "name": f"cluster-{number:07d}",
            "centroid": _point(rng, start),
            "trips": [
                {
                    "_id": ObjectId(struct.pack(">I", start + t) + rng.randbytes(8)),
                    "user_id": rng.randrange(1, 200_000),
                    "start": _point(rng, start + t * 60),
                    "end": _point(rng, start + t * 60 + rng.randrange(120, 3600)),
                    "mode": rng.choice(MODES),
                    "distance_m": rng.randrange(200, 25_000),
                }
                for t in range(trips)
            ],
        }


def id_documents(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``n`` documents holding only the ``_id`` of :func:`cluster_ids`: a million ids, cheaply."""
    for oid in cluster_ids(n, seed):
        yield {"_id": oid}


SHAPES: dict[str, Callable[[int, int], Iterator[dict[str, Any]]]] = {
    "clusters": documents,
    "ids": id_documents,
}
"""Document shapes: realistic clusters (~2 KB), or ``{_id}`` alone."""


def count(coll: Collection[dict[str, Any]]) -> int:
    """Documents in ``coll`` by the server's statistics: FerretDB answers ``count`` (and so
    ``estimated_document_count``) by reading every document, ``collStats`` from its catalog."""
    try:
        return int(coll.database.command("collStats", coll.name)["count"])
    except (OperationFailure, KeyError):
        return coll.estimated_document_count()


def load(
    coll: Collection[dict[str, Any]],
    n: int,
    seed: int = 7,
    chunk: int = 2000,
    *,
    shape: str = "clusters",
    after_chunk: Callable[[], None] | None = None,
) -> bool:
    """Make ``coll`` hold exactly the first ``n`` documents of ``seed`` in ``shape``; False if it
    already did (its manifest entry says so and the count agrees). ``after_chunk`` runs after each
    bulk insert (the benchmark trims mongo-java-server's in-memory oplog there)."""
    manifest = coll.database[MANIFEST]
    wanted: dict[str, Any] = {"_id": coll.name, "n": n, "seed": seed}
    if shape != "clusters":
        wanted["shape"] = shape
    if manifest.find_one({"_id": coll.name}) == wanted and count(coll) == n:
        return False
    coll.drop()
    manifest.delete_many({"_id": coll.name})
    batch: list[dict[str, Any]] = []
    for doc in SHAPES[shape](n, seed):
        batch.append(doc)
        if len(batch) == chunk:
            coll.insert_many(batch, ordered=False)
            batch = []
            if after_chunk:
                after_chunk()
    if batch:
        coll.insert_many(batch, ordered=False)
    manifest.insert_one(wanted)
    return True


def prefill(mysql_url: str, table: str, column: str, ids: list[str]) -> int:
    """Insert ``ids`` into an empty table (as rows that an earlier sync wrote); 0 if not empty."""
    url = MySQLURL.parse(mysql_url)
    conn: Any = MySQLdb.connect(
        host=url.host,
        port=url.port,
        user=url.user,
        password=url.password,
        database=url.database,
        charset="utf8mb4",
    )
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*) FROM `{table}`")
        if cur.fetchone()[0]:
            return 0
        cur.executemany(f"INSERT INTO `{table}` (`{column}`) VALUES (%s)", [(i,) for i in ids])
        conn.commit()
        return len(ids)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30_000, help="documents to load")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--collection", default="cluster_trips")
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), default="clusters", help="2 KB clusters or {_id} only"
    )
    parser.add_argument(
        "--prefill",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="also put this share of the ids into an empty cm_cluster_id",
    )
    args = parser.parse_args()
    client: MongoClient[dict[str, Any]] = MongoClient(os.environ["IDSYNC_MONGO_URI"])
    with client:
        db = client.get_default_database()
        loaded = load(db[args.collection], args.n, args.seed, shape=args.shape)
    state = "loaded" if loaded else "already loaded"
    noun = "clusters" if args.shape == "clusters" else "{_id} documents"
    print(f"{args.collection}: {args.n:,} {noun} {state} (seed {args.seed})", file=sys.stderr)
    if args.prefill:
        ids = [str(i) for i in cluster_ids(args.n, args.seed)]
        rng = random.Random(args.seed)
        chosen = rng.sample(ids, int(len(ids) * args.prefill))
        added = prefill(os.environ["IDSYNC_MYSQL_URL"], "cm_cluster_id", "cluster_id", chosen)
        print(
            f"cm_cluster_id: {added:,} rows pre-filled"
            if added
            else "cm_cluster_id: already has rows, not pre-filled",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
