"""One contender, one fresh process: wall time, client CPU and peak RSS of exactly that process.

The command runs under ``bench/spawn.py``, a small parent that forks it and reaps it with
``os.wait4``: the figures are the command's own (user + system CPU, peak resident set), neither the
benchmark's nor the parent's (see that module for why the parent must be small).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SPAWN = Path(__file__).resolve().with_name("spawn.py")


@dataclass(frozen=True)
class ProcessRun:
    """What one finished process cost."""

    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float
    returncode: int
    started_at: float
    """``time.time()`` just before the process was spawned."""
    stdout: str
    stderr_tail: str
    stderr_lines: int

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_process(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> ProcessRun:
    """Run ``argv`` to its end; stderr goes to a file, as a scheduled job's log would."""
    with (
        tempfile.TemporaryFile("w+b") as out,
        tempfile.TemporaryFile("w+b") as err,
        tempfile.NamedTemporaryFile("r", suffix=".json") as report,
    ):
        spawn = [sys.executable, "-S", str(SPAWN), report.name, *argv]
        # Its own process group: if the benchmark is stopped, the command is stopped with it
        # (a sync left running would hold the target's lock and load the servers).
        proc = subprocess.Popen(
            spawn, env=dict(env), cwd=cwd, stdout=out, stderr=err, start_new_session=True
        )
        try:
            proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, spawn)
        cost = json.load(report)
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        tail, lines = _tail(err)
    return ProcessRun(
        wall_s=cost["wall_s"],
        user_s=cost["user_s"],
        sys_s=cost["sys_s"],
        max_rss_mb=cost["max_rss_kb"] / 1024,  # kilobytes on Linux
        returncode=cost["returncode"],
        started_at=cost["started_at"],
        stdout=stdout,
        stderr_tail=tail,
        stderr_lines=lines,
    )


def _tail(err: IO[bytes], keep: int = 2000) -> tuple[str, int]:
    """The end of a log file, and how many lines it has, read in chunks (it may be large)."""
    err.seek(0)
    lines, last = 0, b""
    while chunk := err.read(1 << 20):
        lines += chunk.count(b"\n")
        last = (last + chunk)[-keep:]
    return last.decode("utf-8", "replace"), lines


@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of a few runs."""

    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.min, "max": self.max}
