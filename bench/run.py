"""Run the benchmark: load data once, then time each contender in fresh processes.

``python -m bench.run`` runs the default plan (see ``bench/plan.py``); ``make bench`` runs it and
publishes into ``bench/results/``. ``python -m bench.run --sizes 1000 --repeat 1`` is a quick check
(about 30 seconds) that writes to ``bench/out/``. ``--help`` lists the flags.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import contenders, env, plan, report
from bench.conn import with_path
from bench.datagen import load
from bench.dlt_target import DltTarget
from bench.measure import Spread, run_process
from bench.scenarios import BenchTable, Dataset
from bench.servers import (
    PrivateMongoJava,
    Source,
    Unavailable,
    available_mb,
    heap_mb,
    mongo_client,
    parse_sources,
    server_version,
    trim_oplog,
)


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Work:
    """Everything one source has to measure, grouped by dataset."""

    source: Source
    datasets: dict[Dataset, list[plan.Block]] = field(default_factory=dict)


@dataclass
class Results:
    """results.json, built up as cells finish."""

    path: Path
    data: dict[str, Any]

    def cell(self, key: dict[str, Any]) -> dict[str, Any]:
        cells: list[dict[str, Any]] = self.data["cells"]
        for cell in cells:
            if all(cell[k] == v for k, v in key.items()):
                return cell
        cells.append({**key, "runs": [], "errors": []})
        return cells[-1]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.data["cells"].sort(key=_cell_order)
        self.path.write_text(json.dumps(self.data, indent=1) + "\n")


def _cell_order(cell: dict[str, Any]) -> tuple[object, ...]:
    order = contenders.KNOWN
    return (
        cell["source"],
        cell["shape"],
        cell["n"],
        cell["scenario"],
        order.index(cell["contender"]),
    )


def group(p: plan.Plan) -> list[Work]:
    works: dict[str, Work] = {}
    for block in p.blocks:
        for source in parse_sources(",".join(block.sources)):
            work = works.setdefault(source.name, Work(source))
            for n in block.sizes:
                work.datasets.setdefault(Dataset(block.shape, n, p.seed), []).append(block)
    for work in works.values():
        work.datasets = dict(sorted(work.datasets.items(), key=lambda kv: (kv[0].shape, kv[0].n)))
    return list(works.values())


@contextlib.contextmanager
def started(work: Work, out: Path, notes: list[str]) -> Iterator[str]:
    """The source's base URI; for the private mongo-java-server, started for the block."""
    if not work.source.private:
        yield work.source.uri
        return
    room = int(available_mb() * 0.8)
    for dataset in [d for d in work.datasets if heap_mb(d.shape, d.n) > room]:
        needs = heap_mb(dataset.shape, dataset.n)
        notes.append(f"{work.source.name}: {dataset.name} skipped: needs a {needs} MB heap")
        del work.datasets[dataset]
    need = max((heap_mb(d.shape, d.n) for d in work.datasets), default=0)
    with PrivateMongoJava(need, out / "mongo-java-server.log") as server:
        say(f"{work.source.name}: private mongo-java-server, heap {need} MB, at {server.uri}")
        yield server.uri


def load_dataset(uri: str, dataset: Dataset, private: bool) -> dict[str, Any]:
    with mongo_client(uri) as client:
        coll = client[dataset.name]["cluster_trips"]
        begun = time.perf_counter()
        trim = (lambda: trim_oplog(client)) if private else None
        chunk = 10_000 if dataset.shape == "ids" else 2_000
        loaded = load(coll, dataset.n, dataset.seed, chunk, shape=dataset.shape, after_chunk=trim)
        seconds = time.perf_counter() - begun
        if private:  # a JIT-compiled server: warm it up before timing anything
            for _ in coll.find({}, {"_id": 1}, batch_size=10_000).sort("_id", 1):
                pass
    state = "loaded" if loaded else "already loaded, checked"
    say(f"{dataset.name}: {state} in {seconds:.1f}s")
    return {"loaded": loaded, "load_s": round(seconds, 2)}


def drop_dataset(uri: str, dataset: Dataset) -> None:
    """Free the private server's memory for the next dataset."""
    with mongo_client(uri) as client:
        client.drop_database(dataset.name)
        trim_oplog(client)


def measure_dataset(work: Work, uri: str, dataset: Dataset, p: plan.Plan, results: Results) -> None:
    mongo_uri = with_path(uri, dataset.name)
    table = BenchTable(os.environ["IDSYNC_MYSQL_URL"], dataset)
    table.open(mongo_uri)
    cells = [(s, c) for b in work.datasets[dataset] for s in b.scenarios for c in b.contenders]
    cells = list(dict.fromkeys(cells))
    for scenario in dict.fromkeys(s for s, _ in cells):
        table.ensure_snapshot(scenario)
    environment = contenders.environment(mongo_uri, table.url)
    with tempfile.TemporaryDirectory(prefix="idsync-bench-") as tmp:
        for repeat in range(p.repeat):
            for scenario, contender in cells:
                key = {"source": work.source.name, "shape": dataset.shape, "n": dataset.n,
                       "scenario": scenario, "contender": contender}  # fmt: skip
                cell = results.cell(key)
                if repeat == 0:
                    cell["runs"], cell["errors"] = [], []
                time_one(table, dataset, (scenario, contender), environment, Path(tmp), cell, p)
            results.save()
        if p.profile:
            for scenario in dict.fromkeys(s for s, c in cells if c == "idsync"):
                profile_one(table, scenario, environment, Path(tmp), p.out, work.source.name)
    table.close()


def time_one(
    table: BenchTable,
    dataset: Dataset,
    what: tuple[str, str],
    environment: dict[str, str],
    tmp: Path,
    cell: dict[str, Any],
    p: plan.Plan,
) -> None:
    scenario, contender = what
    missing = dataset.missing(scenario)
    peer = None
    if contender in contenders.OPTIONAL:
        peer = DltTarget(table.url, dataset, contender, tmp)
    label = f"{cell['source']} {dataset.name} ({scenario}) {contender}"
    try:
        if peer is not None:
            peer.reset(scenario, lambda: contenders.run(contender, environment, tmp, missing))
        else:
            table.reset(scenario)
        busy = settle(p.settle_s)
        figures = contenders.run(contender, environment, tmp, missing)
        check_after(table, peer, dataset.rows_after(scenario))
    except RuntimeError as exc:  # RunFailed, or a dlt table that even a priming run left wrong
        say(f"{label}: FAILED: {exc}")
        cell["errors"].append(str(exc))
        return
    cell["runs"].append({**figures.as_dict(), "busy_before_pct": busy})
    summarize(cell)
    say(f"{label}: {figures.wall_s:.3f}s wall, {figures.cpu_s:.3f}s CPU, {figures.rss_mb:.0f} MB")


def check_after(table: BenchTable, peer: DltTarget | None, rows_wanted: int) -> None:
    """Raise :class:`contenders.RunFailed` unless the run left its table exact: the bench's
    table holds the scenario's rows (a UNIQUE column), or dlt's table each source id once."""
    if peer is not None:
        if problem := peer.check():
            raise contenders.RunFailed(f"dlt's table is not exact: {problem}")
        return
    rows = table.count()
    if rows != rows_wanted:
        raise contenders.RunFailed(f"{rows} rows after the run, not {rows_wanted}")


def settle(most_s: float = 10, idle_below_pct: float = report.BUSY_PCT) -> float:
    """Wait (up to ``most_s``) until the machine is nearly idle: the reset's background work in
    MariaDB, or anything else running here, would slow whichever contender runs next. Returns the
    CPU use seen last, which the results keep per run."""
    import psutil

    deadline = time.monotonic() + most_s
    busy = float(psutil.cpu_percent(interval=0.3 if most_s else 0.05))
    while busy >= idle_below_pct and time.monotonic() < deadline:
        busy = float(psutil.cpu_percent(interval=0.3))
    return busy


def summarize(cell: dict[str, Any]) -> None:
    runs = cell["runs"]
    for name in ("wall_s", "cpu_s", "rss_mb"):
        cell[name] = Spread.of([run[name] for run in runs]).as_dict()
    cell["ids_per_s"] = cell["n"] / cell["wall_s"]["median"] if cell["wall_s"]["median"] else None
    if runs and "rows_written" in runs[0]:
        cell["rows_written"] = Spread.of([run["rows_written"] for run in runs]).as_dict()
    if runs and "reported_s" in runs[0]:
        cell["reported_s"] = Spread.of([run["reported_s"] for run in runs]).as_dict()
    if runs and "fixed_s" in runs[0]:
        cell["fixed_s"] = Spread.of([run["fixed_s"] for run in runs]).as_dict()
        cell["parts_s"] = Spread.of([run["parts_s"] for run in runs]).as_dict()
        cell["parts"] = {
            part: Spread.of([run["parts"][part]["wall_s"] for run in runs]).median
            for part in runs[0]["parts"]
        }


def profile_one(
    table: BenchTable, scenario: str, environment: dict[str, str], tmp: Path, out: Path, source: str
) -> None:
    """One more idsync run, under pyinstrument (not timed); its text profile is kept."""
    table.reset(scenario)
    target = (out / "profiles" / f"{source}-{table.dataset.name}-{scenario}.txt").resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "bench.profile", str(target), "run", "--json"]
    proc = run_process(argv, environment, tmp)
    if proc.returncode != 0 or not target.exists() or not target.stat().st_size:
        say(f"profile of {target.name} failed: {proc.stderr_tail[-400:]}")
        return
    say(f"profile: {target}")


def new_results(p: plan.Plan) -> Results:
    path = p.out / "results.json"
    if p.merge and path.exists():
        return Results(path, json.loads(path.read_text()))
    return Results(path, {"cells": [], "datasets": [], "notes": [], "servers": {}})


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through run_process, which stops the command


def main(argv: list[str] | None = None) -> None:
    p = plan.parse(argv)
    signal.signal(signal.SIGTERM, _stop)
    if "IDSYNC_MYSQL_URL" not in os.environ:
        raise SystemExit('bench: set IDSYNC_MYSQL_URL (eval "$(dev/services env)")')
    results, begun = new_results(p), time.time()
    data = results.data
    earlier = (data.get("plan", []), data.get("duration_s", 0)) if data["cells"] else ([], 0)
    software = env.software()
    data.setdefault("software", software)  # a merge keeps the first run's; its note names ours
    data.update(machine=env.machine(), repeat=p.repeat, seed=p.seed, settle_s=p.settle_s)
    plan_now = [block.describe() for block in p.blocks]
    data["plan"] = list(dict.fromkeys([*earlier[0], *plan_now]))
    for work in group(p):
        try:
            run_source(work, p, results)
        except Unavailable as exc:
            data["notes"].append(f"{work.source.name}: not measured: {exc}")
            say(f"{work.source.name}: not measured: {exc}")
    data["duration_s"] = earlier[1] + round(time.time() - begun)
    data["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if earlier[0]:
        data["notes"].append(
            f"{data['finished_at']}: measured again and merged: {'; '.join(plan_now)}"
            f" (idsync {software['idsync']})"
        )
    results.save()
    report.render(p.out)
    say(f"done in {(time.time() - begun) / 60:.1f} min: {p.out}/results.md")


def run_source(work: Work, p: plan.Plan, results: Results) -> None:
    data = results.data
    with started(work, p.out, data["notes"]) as uri:
        data["servers"][work.source.name] = server_version(uri, work.source.name)
        for dataset in list(work.datasets):
            loading = load_dataset(uri, dataset, work.source.private)
            data["datasets"].append(
                {"source": work.source.name, "dataset": dataset.name, **loading}
            )
            table = BenchTable(os.environ["IDSYNC_MYSQL_URL"], dataset)
            table.open(with_path(uri, dataset.name))
            version = table.server_version()
            flavour = "MariaDB" if "mariadb" in version.lower() else "MySQL"
            data["servers"]["mysql"] = {"flavour": flavour, "version": version}
            table.close()
            measure_dataset(work, uri, dataset, p, results)
            if work.source.private:
                drop_dataset(uri, dataset)


if __name__ == "__main__":
    main()
