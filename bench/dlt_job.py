"""The same job written with dlt, the general pipeline library a Python team would reach for.

A resource over pymongo yields the collection's ``_id``s, ``primary_key="_id"``,
``write_disposition="merge"``, into dlt's ``sqlalchemy`` destination on the same MySQL server: a
dataset (MySQL database) of dlt's own, named after the bench's database (``<database>_dlt``, and
``_dlt_docs`` for the whole-document variant), where dlt creates its table ``cluster_trips`` and
its bookkeeping tables (``_dlt_loads``, ``_dlt_pipeline_state``, ``_dlt_version``); the merge
stages every row in ``<dataset>_staging`` first.

Two variants:

- keys only (the default): ``find({}, {"_id": 1})``, each ``_id`` as its 24-hex text;
- ``--docs``: whole documents from ``find()``, the version a user writes first; dlt flattens
  nested objects into columns and puts the ``trips`` arrays into a child table
  ``cluster_trips__trips``. BSON values JSON cannot hold (the ObjectIds, nested ones too) become
  their text first, as dlt's extractor rejects them.

Tuned as dlt's documentation allows (bench/README.md says what was tried): pages of 10,000 items
yielded instead of single rows; ``_id`` declared ``text`` of precision 24 (a ``VARCHAR(24)``
instead of ``TEXT``) and ``create_primary_keys=True``, without which the merge's ``DELETE ...
WHERE EXISTS`` compares every staged row with every stored one (12 s instead of 0.3 s at 10,000
ids in sync, quadratic); telemetry off. Any dlt setting can still be given as an environment
variable (``NORMALIZE__WORKERS=2``, ``DATA_WRITER__BUFFER_MAX_ITEMS=...``): code only sets
defaults.

Usage: ``IDSYNC_MONGO_URI=… IDSYNC_MYSQL_URL=… python -m bench.dlt_job --dir DIR [--docs]
[--profile OUT.txt]``; DIR holds dlt's pipelines and data directories (nothing in the home
directory). Prints ``{"rows_written": N, "tables": {...}, "steps_s": {...}}``: rows dlt
normalized and loaded, and the wall seconds of its steps (extract, normalize, load).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo import MongoClient

from bench.conn import MySQLAddress, mongo_database

PIPELINE = "idsync_bench"
TABLE = "cluster_trips"
PAGE = 10_000
DOCS_BATCH = 1_000  # whole 2 KB documents: the batch the original job's cursor asked for


def dataset_name(database: str, docs: bool) -> str:
    """dlt's dataset (a MySQL database of its own) for the bench database ``database``."""
    return f"{database}_dlt_docs" if docs else f"{database}_dlt"


def sqlalchemy_url(mysql_url: str) -> str:
    """The MySQL URL as SQLAlchemy names it, through mysqlclient (the driver idsync uses)."""
    a = MySQLAddress.parse(mysql_url)
    return f"mysql+mysqldb://{a.user}:{a.password}@{a.host}:{a.port}/{a.database}?charset=utf8mb4"


def plain(value: Any) -> Any:
    """``value`` with every ObjectId, at any depth, as its text (what JSON can hold)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, ObjectId):
        return str(value)
    return value


def pages(mongo_uri: str, docs: bool) -> Iterator[list[dict[str, Any]]]:
    """The collection as pages of rows: dlt handles a list per step faster than a row per step."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    with client:
        coll = client[mongo_database(mongo_uri)][TABLE]
        if docs:
            cursor = coll.find({}, batch_size=DOCS_BATCH)
        else:
            cursor = coll.find({}, {"_id": 1}, batch_size=PAGE)
        page: list[dict[str, Any]] = []
        for doc in cursor:
            page.append(plain(doc) if docs else {"_id": str(doc["_id"])})
            if len(page) == PAGE:
                yield page
                page = []
        if page:
            yield page


def sync(mongo_uri: str, mysql_url: str, workdir: Path, docs: bool) -> dict[str, Any]:
    """One run of the pipeline: the rows it wrote, per table, and the seconds of each step."""
    import dlt

    resource = dlt.resource(
        pages(mongo_uri, docs),
        name=TABLE,
        primary_key="_id",
        write_disposition="merge",
        columns={"_id": {"data_type": "text", "precision": 24, "nullable": False}},
    )
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE,
        destination=dlt.destinations.sqlalchemy(
            sqlalchemy_url(mysql_url), create_primary_keys=True
        ),
        dataset_name=dataset_name(MySQLAddress.parse(mysql_url).database, docs),
        pipelines_dir=str(workdir / "pipelines"),
    )
    pipeline.run(resource)  # raises when a load job fails
    trace = pipeline.last_trace
    normalized = trace.last_normalize_info if trace else None
    counts = normalized.row_counts if normalized else {}
    steps = {
        str(step.step): (step.finished_at - step.started_at).total_seconds()
        for step in (trace.steps if trace else [])
        if step.finished_at and step.step != "run"
    }
    return {"tables": {name: int(rows) for name, rows in counts.items()}, "steps_s": steps}


def configure(workdir: Path) -> None:
    """dlt's settings through its environment variables: no files, nothing sent anywhere."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DLT_DATA_DIR", str(workdir / "data"))
    os.environ.setdefault("DLT_PROJECT_DIR", str(workdir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="dlt's working directory")
    parser.add_argument("--docs", action="store_true", help="whole documents, not keys only")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument text profile here")
    args = parser.parse_args()
    configure(args.dir)
    mongo_uri, mysql_url = os.environ["IDSYNC_MONGO_URI"], os.environ["IDSYNC_MYSQL_URL"]
    profiler: Any = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    done = sync(mongo_uri, mysql_url, args.dir, args.docs)
    if profiler is not None:
        profiler.stop()
        # the tree hides library frames, where dlt's time is: the flat list of self time too
        text = profiler.output_text(unicode=True, color=False)
        flat = profiler.output_text(unicode=True, color=False, flat=True)
        args.profile.write_text(text + "\n" + "\n".join(flat.splitlines()[:60]) + "\n")
    print(json.dumps({"rows_written": done["tables"].get(TABLE, 0), **done}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
