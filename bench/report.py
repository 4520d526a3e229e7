"""results.json → results.md (tables, targets) and wall_vs_n.png (log-log, a line per contender).

``python -m bench.report [DIR]`` renders again from DIR/results.json (default bench/results).
Rendering into ``bench/results`` also refreshes the results block of ``bench/README.md``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from bench import targets
from bench.scenarios import SCENARIOS, size_label
from bench.targets import DASH, TIMES
from bench.targets import get as find

BENCH = Path(__file__).resolve().parent
PUBLISHED = BENCH / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"
Cell = dict[str, Any]
BUSY_PCT = 20


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return DASH
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if value < 1 else f"{value:.{max(digits - 1, 1)}f}"


def _spread(cell: Cell, name: str) -> str:
    s = cell.get(name)
    if not s:
        return DASH
    if s["min"] == s["max"]:
        return _fmt(s["median"])
    return f"{_fmt(s['median'])} ({_fmt(s['min'])}{DASH}{_fmt(s['max'])})"


def _key(cell: Cell) -> dict[str, Any]:
    return {k: cell[k] for k in ("source", "shape", "n", "scenario")}


def ratio(a: Cell | None, b: Cell | None, name: str) -> float | None:
    if not a or not b or not b[name]["median"]:
        return None
    return float(a[name]["median"]) / float(b[name]["median"])


def header(data: dict[str, Any]) -> list[str]:
    m, sw = data.get("machine", {}), data.get("software", {})
    servers = "; ".join(
        f"{name}: {info['flavour']} {info['version']}" for name, info in data["servers"].items()
    )
    return [
        "# idsync benchmark results",
        "",
        f"Measured {data.get('finished_at', '?')}, in {data.get('duration_s', 0) / 60:.0f} min"
        f"{_sessions(data)},"
        f" on {m.get('cpus')} {TIMES} {m.get('cpu_model')}, {m.get('memory_gb')} GB RAM,"
        f" {m.get('os')} (kernel {m.get('kernel')}).",
        f"Client: Python {sw.get('python')}, pymongo {sw.get('pymongo')},"
        f" mysqlclient {sw.get('mysqlclient')}, idsync {sw.get('idsync')}.",
        f"Servers, all on this machine over loopback: {servers}; Java: {sw.get('java')}.",
        "",
        f"Each figure is the median of {data.get('repeat')} runs (min{DASH}max in brackets)."
        " *wall*: process start to exit, for every contender (the floor's parts alone are in"
        " the table after these);"
        " *CPU*: user + system seconds of the sync process; *RSS*: its peak resident set;"
        " *ids/s*: source ids per wall second. Ratios are idsync's figure divided by the"
        " other's: below 1 is better.",
        "",
    ]


def _sessions(data: dict[str, Any]) -> str:
    merged = sum(1 for note in data.get("notes", []) if "measured again and merged" in note)
    return (
        f" (a full run and {merged} merged re-run{'s' * (merged > 1)}: see the notes)"
        if merged
        else ""
    )


def cluster_tables(cells: list[Cell], servers: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for source in dict.fromkeys(c["source"] for c in cells if c["shape"] == "clusters"):
        info = servers.get(source, {})
        lines += [
            f"## {source} ({info.get('flavour', '?')} {info.get('version', '')}),"
            " ~2 KB cluster documents",
            "",
            "| N | scenario | contender | wall s | CPU s | peak RSS MB | ids/s |"
            " idsync/original wall | idsync/original CPU | idsync/floor wall |",
            "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        mine = [c for c in cells if c["source"] == source and c["shape"] == "clusters"]
        lines += [_row(c, mine) for c in mine if c.get("wall_s")]
        lines.append("")
    return lines


def _row(cell: Cell, cells: list[Cell]) -> str:
    key = _key(cell)
    ratios = ["", "", ""]
    if cell["contender"] == "idsync":
        original, floor = (
            find(cells, **key, contender="original"),
            find(cells, **key, contender="floor"),
        )
        ratios = [
            _fmt(ratio(cell, original, "wall_s")),
            _fmt(ratio(cell, original, "cpu_s")),
            _fmt(ratio(cell, floor, "wall_s")),
        ]
    name = f"**{cell['contender']}**" if cell["contender"] == "idsync" else cell["contender"]
    return (
        f"| {size_label(cell['n'])} | {cell['scenario']} | {name} | {_spread(cell, 'wall_s')} |"
        f" {_spread(cell, 'cpu_s')} | {_spread(cell, 'rss_mb')} | {_fmt(cell.get('ids_per_s'))} |"
        f" {' | '.join(ratios)} |"
    )


def floor_table(cells: list[Cell]) -> list[str]:
    floors = [c for c in cells if c["contender"] == "floor" and c.get("parts")]
    if not floors:
        return []
    lines = [
        "## The floor part by part, and idsync beside it",
        "",
        "Median seconds of each bare part of the floor and their sum; the *start-up* of its"
        " process (Python, both drivers imported, both servers connected); the whole floor"
        " process (start-up, parts, exit); idsync's wall time and the duration its own report"
        " gives (`sync()` from start to end: the rest is starting the process and leaving it);"
        " idsync's wall time over the floor process and over the parts alone.",
        "",
        "| source | documents | N | scenario | MongoDB `_id` read | MySQL column read |"
        " bulk insert | parts | start-up | floor process | idsync wall | idsync's own duration |"
        " idsync/floor process | idsync/parts |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        " ---: |",
    ]
    for c in floors:
        parts, mine = c["parts"], find(cells, **_key(c), contender="idsync")
        parts_s = (c.get("parts_s") or c["wall_s"])["median"]  # older results: wall = the parts
        wall: float | None = mine["wall_s"]["median"] if mine else None
        own = mine.get("reported_s", {}).get("median") if mine else None
        lines.append(
            f"| {c['source']} | {c['shape']} | {size_label(c['n'])} | {c['scenario']} |"
            f" {_fmt(parts.get('mongo'))} | {_fmt(parts.get('mysql'))} |"
            f" {_fmt(parts.get('insert'))} | {_fmt(parts_s)} |"
            f" {_fmt(c.get('fixed_s', {}).get('median'))} | {_fmt(c['wall_s']['median'])} |"
            f" {_fmt(wall)} | {_fmt(own)} |"
            f" {_fmt(wall / c['wall_s']['median'] if wall else None)} |"
            f" {_fmt(wall / parts_s if wall else None)} |"
        )
    return [*lines, ""]


def render(out: Path) -> None:
    data = json.loads((out / "results.json").read_text())
    cells: list[Cell] = data["cells"]
    lines = header(data)
    lines += ["![wall time against N](wall_vs_n.png)", ""]
    lines += targets.section(cells)
    lines += cluster_tables(cells, data["servers"])
    lines += floor_table(cells)
    lines += targets.memory_section(cells)
    lines += targets.growth_section(cells)
    lines += _notes(data)
    (out / "results.md").write_text("\n".join(lines).rstrip() + "\n")
    plot(cells, out / "wall_vs_n.png", data)
    if out.resolve() == PUBLISHED.resolve():
        refresh_readme(cells)


def _notes(data: dict[str, Any]) -> list[str]:
    loads = [
        f"- {d['source']} {d['dataset']}: "
        + (f"loaded in {d['load_s']} s" if d["loaded"] else "reused, already loaded")
        for d in data.get("datasets", [])
    ]
    notes = [f"- {note}" for note in data.get("notes", [])]
    busy = [
        run.get("busy_before_pct", 0.0) for cell in data["cells"] for run in cell.get("runs", [])
    ]
    if busy:
        loud = sum(1 for pct in busy if pct >= BUSY_PCT)
        notes.append(
            f"- Before each timed run the machine was let settle (up to {data.get('settle_s')} s)"
            f" below {BUSY_PCT:g}% CPU; {loud} of {len(busy)} runs started above it"
            " (other work on this machine)."
        )
    plan = [f"- {block}" for block in data.get("plan", [])]
    return ["## Plan, data and notes", "", *plan, *loads, *notes, ""]


def refresh_readme(cells: list[Cell]) -> None:
    readme = BENCH / "README.md"
    text = readme.read_text() if readme.exists() else ""
    if START not in text or END not in text:
        return
    block = [START, "", *targets.section(cells)[2:], END]
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    readme.write_text(before + "\n".join(block) + after)


def plot(cells: list[Cell], path: Path, data: dict[str, Any]) -> None:
    """A row per source and document shape, a panel per scenario, a line per contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [c for c in cells if c.get("wall_s")]
    rows = sorted(
        {(c["source"], c["shape"]) for c in measured},
        key=lambda r: (r[1] != "clusters", r[0] != "mongo-java", r),
    )
    if not rows:
        return
    fig, axes = plt.subplots(
        len(rows), len(SCENARIOS), figsize=(16, 3.8 * len(rows)), squeeze=False, sharey="row"
    )
    for row, (source, shape) in enumerate(rows):
        for col, scenario in enumerate(SCENARIOS):
            mine = [
                c
                for c in measured
                if (c["source"], c["shape"], c["scenario"]) == (source, shape, scenario)
            ]
            _panel(axes[row][col], mine, f"{source}, {shape}: ({scenario}) {SCENARIOS[scenario]}")
        axes[row][0].set_ylabel("wall seconds (median)")
    m = data.get("machine", {})
    fig.suptitle(
        f"idsync benchmark: wall time against N, log-log, median of {data.get('repeat')} runs;"
        f" dotted: grows as N. {m.get('cpus')} {TIMES} {m.get('cpu_model')},"
        f" {m.get('memory_gb')} GB",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(ax: Any, cells: list[Cell], title: str) -> None:
    from matplotlib.ticker import FuncFormatter

    if not cells:
        ax.axis("off")
        return
    _lines(ax, cells)
    ax.set(xscale="log", yscale="log", xlabel="N (documents)")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: size_label(int(v))))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def _lines(ax: Any, cells: list[Cell]) -> None:
    """One line per contender, and a dotted line growing as N through the floor's last point."""
    styles = {"idsync": ("C0", "o"), "original": ("C3", "s"), "floor": ("C2", "^")}
    for contender, (color, marker) in styles.items():
        mine = sorted((c for c in cells if c["contender"] == contender), key=lambda c: int(c["n"]))
        if mine:
            xs, ys = [c["n"] for c in mine], [c["wall_s"]["median"] for c in mine]
            ax.plot(xs, ys, marker=marker, color=color, label=contender)
            if contender == "floor" and len(mine) > 1:
                ax.plot([xs[0], xs[-1]], [ys[-1] * xs[0] / xs[-1], ys[-1]], ":", color="grey")


def main() -> None:
    render(Path(sys.argv[1]) if len(sys.argv) > 1 else PUBLISHED)


if __name__ == "__main__":
    main()
