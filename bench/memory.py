"""A run's peak memory against the number of ids, by plan: the set of the target's ids, the
merge of both sides in `_id` order, and what ``auto`` picks with the default budget (130 MiB).

One source (a private mongo-java-server of ``{_id}`` documents), each SQL target in a database
of the bench's own, two scenarios per size: (a) first sync into an empty table, (b) the table in
sync but 1,000 ids. Each run is a fresh `idsync run` process; its peak RSS and wall time are its
own (``bench/measure.py``). The table is checked exact after every run.

``python -m bench.memory [--sizes 200000 1200000] [--targets MariaDB PostgreSQL]
[--plans set merge auto]`` writes ``bench/results/memory.md``, ``memory.json`` and
``memory_vs_n.png``; the cells of sizes it did not measure this time are kept from the
``memory.json`` there (``python -m bench.memory --sizes 10000000 --plans merge auto`` adds the
10M point: its set would hold ~1.7 GB).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import contenders, env
from bench.conn import with_path
from bench.datagen import cluster_ids, load
from bench.measure import run_process
from bench.servers import PrivateMongoJava, heap_mb, mongo_client, trim_oplog
from bench.sql_targets import TARGETS, Table

OUT = Path(__file__).resolve().parent / "results"
PLANS = ("set", "merge", "auto")
SCENARIOS = {"a": "first sync", "b": "1,000 missing"}
BUDGET_MIB = 130


def _rows(ids: list[str], scenario: str, n: int) -> list[str]:
    if scenario == "a":
        return []
    gone = set(random.Random(n).sample(ids, 1000))
    return [i for i in ids if i not in gone]


def measure(table: Table, uri: str, n: int, plans: list[str]) -> list[dict[str, Any]]:
    ids = [str(oid) for oid in cluster_ids(n)]
    process_env = contenders.environment(uri, table.url)
    idsync = str(Path(sys.executable).with_name("idsync"))
    cells = []
    with tempfile.TemporaryDirectory() as work:
        for scenario in SCENARIOS:
            for plan in plans:
                table.fill(_rows(ids, scenario, n))
                argv = [idsync, "run", "--json", "--no-log-ids", "--plan", plan]
                proc = run_process(argv, process_env, Path(work))
                report = json.loads(proc.stdout)
                if proc.returncode != 0 or not table.exact(n):
                    raise RuntimeError(f"{table.name} {n} {scenario} {plan}: not exact")
                cells.append({
                    "target": table.name, "n": n, "scenario": scenario, "plan": plan,
                    "chosen": report["plan"], "rss_mb": round(proc.max_rss_mb, 1),
                    "wall_s": round(proc.wall_s, 2), "cpu_s": round(proc.cpu_s, 2),
                    "measured": time.strftime("%Y-%m-%d"),
                })  # fmt: skip
                print(f"{table.name} {n:,} ({scenario}) {plan}->{report['plan']}:"
                      f" {proc.max_rss_mb:.0f} MiB, {proc.wall_s:.1f} s", flush=True)  # fmt: skip
    return cells


def _kept(sizes: list[int]) -> list[dict[str, Any]]:
    """The published cells of the sizes not measured now: one table for every size."""
    published = OUT / "memory.json"
    if not published.exists():
        return []
    cells: list[dict[str, Any]] = json.loads(published.read_text())["cells"]
    return [cell for cell in cells if cell["n"] not in sizes]


def render(data: dict[str, Any]) -> str:
    lines = [
        "# Peak memory of a run, by plan",
        "",
        "`python -m bench.memory` (`bench/memory.py`): a private mongo-java-server of `{_id}`",
        "documents, each target's table made by `idsync init`, one fresh `idsync run` process",
        f"per cell; peak RSS of that process. {data['machine']['cpus']} cores,"
        f" {data['machine']['memory_gb']} GB. Servers:",
        f"{data['servers']}. {data['duration_s'] // 60} min in all"
        f" (the last invocation: {', '.join(f'{n:,}' for n in data['sizes'])} ids).",
        "",
        "| target | ids | scenario | plan asked | plan run | peak RSS | wall | client CPU |",
        "| --- | ---: | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for c in sorted(data["cells"], key=lambda c: (c["n"], c["target"])):
        lines.append(
            f"| {c['target']} | {c['n']:,} | {SCENARIOS[c['scenario']]} | {c['plan']} |"
            f" {c['chosen']} | {c['rss_mb']:.0f} MiB | {c['wall_s']:.2f} s | {c['cpu_s']:.2f} s |"
        )
    return "\n".join(lines) + "\n"


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4))
    for plan in PLANS:
        cells = [c for c in data["cells"] if c["plan"] == plan and c["scenario"] == "b"]
        for target in sorted({c["target"] for c in cells}):
            points = sorted((c["n"], c["rss_mb"]) for c in cells if c["target"] == target)
            axes.plot(*zip(*points, strict=True), marker="o", label=f"{plan} ({target})")
    axes.axhline(BUDGET_MIB, linestyle="--", color="grey", label="default budget")
    axes.set_xscale("log")
    axes.set_xlabel("ids")
    axes.set_ylabel("peak RSS (MiB), table in sync but 1,000")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_200_000])
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--plans", nargs="+", default=list(PLANS), choices=PLANS)
    args = parser.parse_args()
    begun = time.time()
    data: dict[str, Any] = {"sizes": args.sizes, "cells": _kept(args.sizes)}
    data.update(machine=env.machine(), software=env.software())
    log = OUT.parent / "out" / "memory_mongo.log"
    with PrivateMongoJava(heap_mb("ids", max(args.sizes)), log) as mongo:
        tables = [Table(name, TARGETS[name]) for name in args.targets]
        data["servers"] = ", ".join(t.version for t in tables) + ", mongo-java-server"
        try:
            for n in args.sizes:
                uri = with_path(mongo.uri, f"bench_ids_{n}")
                with mongo_client(uri) as client:
                    coll = client[f"bench_ids_{n}"]["cluster_trips"]
                    load(coll, n, shape="ids", after_chunk=lambda: trim_oplog(client))
                for table in tables:
                    table.init(uri)
                    data["cells"] += measure(table, uri, n, args.plans)
        finally:
            for table in tables:
                table.drop()
    data["duration_s"] = round(time.time() - begun)
    OUT.mkdir(exist_ok=True)
    (OUT / "memory.json").write_text(json.dumps(data, indent=2) + "\n")
    (OUT / "memory.md").write_text(render(data))
    plot(data, OUT / "memory_vs_n.png")


if __name__ == "__main__":
    main()
