"""Wall time of `idsync run --workers N` and of `idsync work` in N processes, against one pass.

One source (a private mongo-java-server of ``{_id}`` documents: it reads no `_id` range by its
index, so each range scans the whole collection), each SQL target, two scenarios: (a) first sync
into an empty table, (b) 1% missing. Per cell a fresh process (``work``: N processes at once,
timed from the first start to the last exit); the table is checked exact after every run.
``run --workers N`` is measured with ``--range-reads always`` (ranges although each scans
everything) and as ``auto`` picks (one pass there, which is the claim to check: never slower).

``python -m bench.workers [--n 1000000] [--repeat 3] [--mongo-uri URI]`` writes
``bench/results/workers.md``, ``workers.json`` and ``workers.png``. ``--mongo-uri`` measures
against that MongoDB instead (its database ``bench_workers`` is filled and kept): where a server
reads an `_id` range by its index, the one place ranges can pay.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import contenders, env
from bench.conn import with_path
from bench.datagen import cluster_ids, load
from bench.measure import run_process
from bench.servers import PrivateMongoJava, heap_mb, mongo_client, server_version, trim_oplog
from bench.sql_targets import TARGETS, Table

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("BENCH_WORKERS_OUT", ROOT / "bench" / "results"))
SCENARIOS = {"a": "first sync", "b": "1% missing"}
IDSYNC = str(Path(sys.executable).with_name("idsync"))
RUN = [IDSYNC, "run", "--json", "--no-log-ids"]
CELLS = [  # (label, argv after `idsync`, processes)
    ("run, one pass", [*RUN], 1),
    # Right after one pass: after the ranges' full scans, mongo-java-server's collector slowed
    # the next cell by 1.2-2.2x (an interleaved A/B showed no difference; workers.md).
    ("run --workers 4 (auto)", [*RUN, "--workers", "4"], 1),
    ("run --workers 2 (ranges)", [*RUN, "--workers", "2", "--range-reads", "always"], 1),
    ("run --workers 4 (ranges)", [*RUN, "--workers", "4", "--range-reads", "always"], 1),
    *[(f"work, {k} process{'es' * (k > 1)}", [IDSYNC, "work", "--json",
       "--fresh-for", "0"], k) for k in (1, 2, 3, 4)],
]  # fmt: skip


def _rows(ids: list[str], scenario: str, n: int) -> list[str]:
    if scenario == "a":
        return []
    gone = set(random.Random(n).sample(ids, n // 100))
    return [i for i in ids if i not in gone]


def _processes(argv: list[str], count: int, process_env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of ``count`` processes started together, to the last one's exit."""
    if count == 1:
        one = run_process(argv, process_env, cwd)
        if one.returncode != 0:
            raise RuntimeError(f"{argv[1]} exited {one.returncode}: {one.stderr_tail}")
        return one.wall_s
    begun = time.perf_counter()
    procs = [subprocess.Popen(argv, env=process_env, cwd=cwd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for _ in range(count)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"work exited {proc.returncode}: {err[-2000:]!r}")
    return time.perf_counter() - begun


def measure(table: Table, uri: str, n: int, repeat: int) -> list[dict[str, Any]]:
    ids = [str(oid) for oid in cluster_ids(n)]
    process_env = contenders.environment(uri, table.url)
    process_env["PYTHONPATH"] = f"{ROOT / 'src'}:{ROOT}"  # this checkout's idsync
    cells = []
    with tempfile.TemporaryDirectory() as work:
        for scenario in SCENARIOS:
            for label, argv, count in CELLS:
                walls = []
                for _ in range(repeat):
                    table.fill(_rows(ids, scenario, n))
                    walls.append(_processes(argv, count, process_env, Path(work)))
                    if not table.exact(n):
                        raise RuntimeError(f"{table.name} {n} {scenario} {label}: not exact")
                wall = statistics.median(walls)
                cells.append({
                    "target": table.name, "n": n, "scenario": scenario, "cell": label,
                    "wall_s": round(wall, 2), "walls": [round(w, 2) for w in walls],
                })  # fmt: skip
                print(f"{table.name} {n:,} ({scenario}) {label}: {wall:.2f} s", flush=True)
    return cells


def render(data: dict[str, Any]) -> str:
    lines = [
        "# Workers: ranges in threads, and `work` in processes, against one pass",
        "",
        f"`python -m bench.workers` (`bench/workers.py`): {data['source']} of `{{_id}}`",
        f"documents ({data['n']:,}), each target's table made by `idsync init`, fresh processes,"
        f" median of {data['repeat']} (wall seconds; in brackets, against one pass of the same"
        f" target and scenario). {data['machine']['cpus']} cores, shared with other work."
        f" Servers: {data['servers']}. {data['duration_s'] // 60} min in all.",
        "",
        "| target | scenario | " + " | ".join(label for label, _, _ in CELLS) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in CELLS) + " |",
    ]
    for target in sorted({c["target"] for c in data["cells"]}):
        for scenario, name in SCENARIOS.items():
            row = {c["cell"]: c["wall_s"] for c in data["cells"]
                   if c["target"] == target and c["scenario"] == scenario}  # fmt: skip
            one = row[CELLS[0][0]]
            shown = [f"{row[label]:.2f} s ({row[label] / one:.2f}x)" for label, _, _ in CELLS]
            lines.append(f"| {target} | {name} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(9, 4.5))
    groups = [(t, s) for t in sorted({c["target"] for c in data["cells"]}) for s in SCENARIOS]
    width = 0.8 / len(CELLS)
    for k, (label, _, _) in enumerate(CELLS):
        walls = [next(c["wall_s"] for c in data["cells"] if (c["target"], c["scenario"],
                 c["cell"]) == (t, s, label)) for t, s in groups]  # fmt: skip
        axes.bar([g + k * width for g in range(len(groups))], walls, width, label=label)
    axes.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))])
    axes.set_xticklabels([f"{t}\n{SCENARIOS[s]}" for t, s in groups])
    axes.set_ylabel(f"wall seconds, {data['n']:,} ids ({data['source']})")
    axes.legend(fontsize="x-small", ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


@contextlib.contextmanager
def _source(mongo_uri: str | None, n: int) -> Iterator[tuple[str, str]]:
    """The source's URI (database ``bench_workers``, ``n`` ids loaded) and what it is."""
    if mongo_uri is not None:
        uri = with_path(mongo_uri, "bench_workers")
        with mongo_client(uri) as client:
            load(client["bench_workers"]["cluster_trips"], n, shape="ids")
        info = server_version(uri, "given")
        yield uri, f"{info['flavour']} {info['version']}"
        return
    log = ROOT / "bench" / "out" / "workers_mongo.log"
    with PrivateMongoJava(heap_mb("ids", n), log) as mongo:
        uri = with_path(mongo.uri, "bench_workers")
        with mongo_client(uri) as client:
            coll = client["bench_workers"]["cluster_trips"]
            load(coll, n, shape="ids", after_chunk=lambda: trim_oplog(client))
        yield uri, "a private mongo-java-server"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--mongo-uri", help="a MongoDB to measure (default: a private one)")
    args = parser.parse_args()
    begun = time.time()
    data: dict[str, Any] = {"n": args.n, "repeat": args.repeat, "cells": []}
    data.update(machine=env.machine(), software=env.software())
    with _source(args.mongo_uri, args.n) as (uri, source):
        data["source"] = source
        tables = [Table(name, TARGETS[name]) for name in args.targets]
        data["servers"] = ", ".join(t.version for t in tables) + f", {source}"
        try:
            for table in tables:
                table.init(uri)
                data["cells"] += measure(table, uri, args.n, args.repeat)
        finally:
            for table in tables:
                table.drop()
    data["duration_s"] = round(time.time() - begun)
    OUT.mkdir(exist_ok=True)
    (OUT / "workers.json").write_text(json.dumps(data, indent=2) + "\n")
    (OUT / "workers.md").write_text(render(data))
    plot(data, OUT / "workers.png")


if __name__ == "__main__":
    main()
