"""The three contenders, each one fresh process per run, and what one run of each measured.

- ``idsync``: ``idsync run --json``, as a user (or a scheduler) runs it; the report on stdout is
  how the benchmark checks the run, the per-id log lines go to stderr, into a file.
- ``original``: ``python -m bench.original``, the replaced job (see ``bench/original.py``).
- ``floor``: ``python -m bench.floor``; its figures are its whole process, as for the others (start,
  connect, the three bare parts, exit); the sum of the parts alone is kept as ``parts_s``, the
  cost of starting and connecting as ``fixed_s``.
- ``dlt``, ``dlt-docs`` (optional, ``--contenders``; the ``bench`` extra installs dlt):
  ``python -m bench.dlt_job``, the same job written with dlt, keys only or whole documents (see
  ``bench/dlt_job.py``); it writes a table of its own, which ``bench/dlt_target.py`` prepares
  and checks.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.dlt_target import workdir as dlt_workdir
from bench.measure import ProcessRun, run_process

CONTENDERS = ("idsync", "original", "floor")
"""The default plan's contenders."""
OPTIONAL = ("dlt", "dlt-docs")
"""Selectable with ``--contenders``: a peer library, not part of the default plan."""
KNOWN = CONTENDERS + OPTIONAL
ROOT = Path(__file__).resolve().parent.parent


class RunFailed(RuntimeError):
    """A contender exited badly or did not do what the scenario needs."""


@dataclass
class Figures:
    """One timed run of one contender."""

    wall_s: float
    cpu_s: float
    rss_mb: float
    process_wall_s: float
    """The whole process, start to exit (the same as ``wall_s``; kept for older results)."""
    log_lines: int
    parts: dict[str, dict[str, float]] = field(default_factory=dict)
    fixed_s: float | None = None
    """Floor only: from spawning the process to both connections ready."""
    parts_s: float | None = None
    """Floor only: the sum of its timed parts' wall seconds (no start-up, no exit)."""
    reported_s: float | None = None
    """idsync only: the duration its own report gives (``sync()`` from start to end)."""
    rows_written: int | None = None
    """Rows the run wrote into its table: the missing ids for every contender but dlt's, which
    say how many rows they loaded (all of them: a merge writes every row it reads)."""

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


def environment(mongo_uri: str, mysql_url: str) -> dict[str, str]:
    """The process environment: ours, minus any idsync setting, plus the two URLs. The idsync
    measured is this tree's (``src/`` first on the path), the one the results name by commit,
    even when the environment's package was installed from another checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")}
    path = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    env.update(IDSYNC_MONGO_URI=mongo_uri, IDSYNC_MYSQL_URL=mysql_url, PYTHONPATH=path)
    return env


def argv(contender: str, missing_file: Path) -> list[str]:
    if contender == "idsync":
        return [str(Path(sys.executable).with_name("idsync")), "run", "--json"]
    if contender == "original":
        return [sys.executable, "-m", "bench.original"]
    if contender in OPTIONAL:
        docs = ["--docs"] if contender == "dlt-docs" else []
        work = dlt_workdir(missing_file.parent, contender)
        return [sys.executable, "-m", "bench.dlt_job", "--dir", str(work), *docs]
    return [sys.executable, "-m", "bench.floor", "--missing", str(missing_file)]


def run(contender: str, env: dict[str, str], workdir: Path, missing: list[str]) -> Figures:
    """One timed run in ``workdir`` (no idsync.toml there); raises :class:`RunFailed`."""
    missing_file = workdir / "missing.txt"
    if contender == "floor":
        missing_file.write_text("\n".join(missing))
    proc = run_process(argv(contender, missing_file), env, workdir)
    if proc.returncode != 0:
        raise RunFailed(f"{contender} exited {proc.returncode}: {proc.stderr_tail[-600:]}")
    figures = Figures(
        wall_s=proc.wall_s,
        cpu_s=proc.cpu_s,
        rss_mb=proc.max_rss_mb,
        process_wall_s=proc.wall_s,
        log_lines=proc.stderr_lines,
        rows_written=len(missing),
    )
    if contender in OPTIONAL:
        figures.rows_written = int(json.loads(proc.stdout)["rows_written"])
    elif contender == "idsync":
        figures.reported_s = _check_idsync(proc, len(missing))
    elif contender == "floor":
        _floor_figures(proc, figures, len(missing))
    return figures


def _check_idsync(proc: ProcessRun, missing: int) -> float:
    """The run's own duration, once its report says it did what the scenario needs."""
    report = json.loads(proc.stdout)
    if report.get("status") != "ok" or report.get("inserted") != missing:
        raise RunFailed(
            f"idsync: status {report.get('status')}, inserted {report.get('inserted')}"
            f" of {missing}: {report.get('error')}"
        )
    return float(report["duration_s"])


def _floor_figures(proc: ProcessRun, figures: Figures, missing: int) -> None:
    out = json.loads(proc.stdout)
    parts: dict[str, dict[str, float]] = out["parts"]
    inserted = int(parts.get("insert", {}).get("count", 0))
    if inserted != missing:
        raise RunFailed(f"floor inserted {inserted} of {missing}")
    figures.parts = parts
    figures.parts_s = sum(part["wall_s"] for part in parts.values())
    figures.fixed_s = float(out["ready_at"]) - proc.started_at
