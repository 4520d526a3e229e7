"""The job idsync replaces, ported step for step as the benchmark's baseline.

The original `update-cluster-id` job (JavaScript, Mongoose and Objection) did, in this order:

1. ``ClusterTrips.find().lean()``: every cluster document, whole, into one array; on an error,
   log it and go on with an empty array;
2. ``CmClusterId.query().select('cluster_id')``: every stored id, into a set;
3. for each cluster, ``_id.toString()``, kept when it is not in the set;
4. for each missing id, one ``INSERT`` (autocommit) and one log line;
5. any other error: log it with its stack, and end as if nothing happened.

Ported with the same drivers as idsync (pymongo, mysqlclient), so that what differs is only the
algorithm. Two unavoidable choices, both in the baseline's favour or neutral: the cursor asks for
1,000 documents per batch (mongo-java-server ignores MongoDB's 16 MB reply cap and would answer
a default ``getMore`` with the whole collection), and the log goes through Python's ``logging`` to
stderr, one record per line, as the original's logger wrote one line per call.

Usage: ``IDSYNC_MONGO_URI=… IDSYNC_MYSQL_URL=… python -m bench.original``
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from bench.conn import mongo_database, mysql_connect

log = logging.getLogger("update-cluster-id")
READ_BATCH = 1000


def get_cluster_trips(client: MongoClient[dict[str, Any]], database: str) -> list[dict[str, Any]]:
    """All cluster documents, whole, or an empty list when MongoDB fails (as the original did)."""
    try:
        return list(client[database]["cluster_trips"].find({}, batch_size=READ_BATCH))
    except PyMongoError as exc:
        log.error("[update-cluster-id][getClusterTrips] error: %s", exc)
        return []


def missing_ids(cluster_list: list[dict[str, Any]], existing_ids: set[str]) -> list[str]:
    """``_id.toString()`` of each cluster that the table lacks, in the source's order."""
    missing: list[str] = []
    for cluster in cluster_list:
        value = cluster.get("_id")
        cluster_id = str(value) if value is not None else ""
        if cluster_id and cluster_id not in existing_ids:
            missing.append(cluster_id)
    return missing


def update_cluster_id(mongo_uri: str, mysql_url: str) -> None:
    """One run of the original job; like it, never raises."""
    try:
        log.info("[update-cluster-id] start")
        client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
        cluster_list = get_cluster_trips(client, mongo_database(mongo_uri))
        if not cluster_list:
            log.info("[update-cluster-id] No clusters found")
            log.info("[update-cluster-id] job end")
            return
        conn = mysql_connect(mysql_url, autocommit=True)
        cur = conn.cursor()
        cur.execute("SELECT cluster_id FROM cm_cluster_id")
        existing_ids = {row[0] for row in cur.fetchall()}
        for cluster_id in missing_ids(cluster_list, existing_ids):
            cur.execute("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", (cluster_id,))
            log.info("[update-cluster-id] Inserted cluster_id: %s", cluster_id)
        conn.close()
        client.close()
        log.info("[update-cluster-id] job end")
    except Exception as exc:  # the original caught everything and ended quietly
        log.error("[update-cluster-id] error: %s", exc)
        log.info("[update-cluster-id] stack: %s", traceback.format_exc())


def main() -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    update_cluster_id(os.environ["IDSYNC_MONGO_URI"], os.environ["IDSYNC_MYSQL_URL"])


if __name__ == "__main__":
    main()
