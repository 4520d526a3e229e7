"""idsync beside dlt: ``bench/results/dlt.md`` and ``dlt.json`` from a run with the dlt contenders.

``python -m bench.dlt_report [DIR]`` reads ``DIR/results.json`` (default ``bench/out/dlt``, where
``make bench-dlt`` measures) and publishes it: a table per document shape with every contender of
each cell (wall, client CPU, peak RSS, rows written, exact runs) and idsync's figures over dlt's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.contenders import KNOWN, OPTIONAL
from bench.report import _fmt, _spread, ratio
from bench.scenarios import SCENARIOS, size_label
from bench.targets import DASH, TIMES

BENCH = Path(__file__).resolve().parent
Cell = dict[str, Any]
SHAPES = {"clusters": "~2 KB cluster documents", "ids": "`{_id}` documents"}


def _key(cell: Cell) -> tuple[object, ...]:
    return (cell["source"], cell["shape"], cell["n"], cell["scenario"])


def exact_runs(cell: Cell) -> str:
    """``3 of 3``: runs whose table was exact afterwards, of all runs (a failed run counts)."""
    good = len(cell.get("runs", []))
    return f"{good} of {good + len(cell.get('errors', []))}"


def _ratios(cell: Cell, mine: Cell | None) -> list[str]:
    if cell["contender"] not in OPTIONAL:
        return ["", "", ""]
    return [
        f"{_fmt(ratio(mine, cell, name))}{TIMES}" if ratio(mine, cell, name) else DASH
        for name in ("wall_s", "cpu_s", "rss_mb")
    ]


def table(cells: list[Cell], shape: str) -> list[str]:
    """One Markdown table: a row per contender of each size and scenario of ``shape``."""
    mine = sorted(
        (c for c in cells if c["shape"] == shape and c.get("runs")),
        key=lambda c: (*_key(c), KNOWN.index(c["contender"])),
    )
    idsync = {_key(c): c for c in mine if c["contender"] == "idsync"}
    lines = [
        "| N | scenario | contender | wall s | CPU s | peak RSS MB | rows written | exact |"
        " idsync/dlt wall | idsync/dlt CPU | idsync/dlt RSS |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for c in mine:
        written = c.get("rows_written", {}).get("median")
        name = f"**{c['contender']}**" if c["contender"] == "idsync" else c["contender"]
        lines.append(
            f"| {size_label(c['n'])} | ({c['scenario']}) {SCENARIOS[c['scenario']]} | {name}"
            f" | {_spread(c, 'wall_s')} | {_spread(c, 'cpu_s')} | {_spread(c, 'rss_mb')}"
            f" | {DASH if written is None else f'{written:,.0f}'} | {exact_runs(c)}"
            f" | {' | '.join(_ratios(c, idsync.get(_key(c))))} |"
        )
    return lines


def render(data: dict[str, Any]) -> str:
    m, sw = data.get("machine", {}), data.get("software", {})
    servers = "; ".join(f"{k}: {v['flavour']} {v['version']}" for k, v in data["servers"].items())
    lines = [
        "# idsync beside dlt",
        "",
        f"Measured {data.get('finished_at', '?')}, {data.get('duration_s', 0) / 60:.0f} min in"
        f" all, on {m.get('cpus')} {TIMES} {m.get('cpu_model')}, {m.get('memory_gb')} GB RAM."
        f" Client: Python {sw.get('python')}, pymongo {sw.get('pymongo')}, idsync"
        f" {sw.get('idsync')}, dlt {sw.get('dlt', '?')} (sqlalchemy destination)."
        f" Servers: {servers}.",
        "",
        "Each figure is the median of a cell's runs, each a fresh process (how many: the"
        f" *exact* column; min{DASH}max in brackets), the contenders of a cell measured in one"
        " run on the same data and servers (dlt-docs in a run of its own, on the same data"
        " loaded again). *wall*:"
        " process start to exit; *CPU*: user + system seconds of that process; *RSS*: its peak;"
        " *rows written*: rows the run wrote into its table (for `original` and `floor`, the"
        " ids it was given to insert); *exact*: runs after which the table held every source"
        " id exactly once (dlt's table read back id by id; the others' by its row count on the"
        " UNIQUE column, and idsync's own report of what it inserted). idsync/dlt below 1 is"
        " idsync's advantage. The machine was shared: 21 of the runs began with the CPU busy"
        " (`busy_before_pct` in dlt.json; in the first repeat at 10k, every contender's).",
        "",
        "Contenders: `idsync run --json`; `original`, the job idsync replaced; `floor`, the bare"
        " reads and bulk insert the servers allow (bench/README.md); `dlt`, the same job written"
        " with dlt (`bench/dlt_job.py`: a resource over pymongo yielding `_id` as text, merge on"
        ' `primary_key="_id"`, tuned); `dlt-docs`, the same with whole documents. How dlt was'
        ' tuned and what was tried: bench/README.md, "idsync beside dlt"; where each spends its'
        " time: the README's Benchmarks section.",
        "",
    ]
    for shape in ("clusters", "ids"):
        if any(c["shape"] == shape for c in data["cells"]):
            lines += [
                f"## mongo-java-server, {SHAPES[shape]}",
                "",
                *table(data["cells"], shape),
                "",
            ]
    if data.get("notes"):
        lines += ["## Notes", "", *[f"- {note}" for note in data["notes"]], ""]
    return "\n".join(lines)


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/dlt")
    data = json.loads((source / "results.json").read_text())
    if not any(cell.get("contender", "").startswith("dlt") for cell in data.get("cells", [])):
        # A run that measured nothing (a server not there) must not replace the results.
        sys.exit(f"no dlt runs in {source}/results.json: nothing published ({data.get('notes')})")
    software = data.setdefault("software", {})
    if software.get("dlt", "?") == "?":
        software["dlt"] = _dlt_version()
    out = BENCH / "results"
    (out / "dlt.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "dlt.md").write_text(render(data))
    print(f"{out / 'dlt.md'}", file=sys.stderr)


def _dlt_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("dlt")
    except metadata.PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
