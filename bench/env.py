"""The machine and the versions a set of results was measured with."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout or done.stderr).strip()


def _first_line(argv: list[str]) -> str:
    text = _output(argv)
    return text.splitlines()[0] if text else "?"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def machine() -> dict[str, object]:
    import psutil

    try:
        system = platform.freedesktop_os_release().get("PRETTY_NAME", platform.system())
    except OSError:
        system = platform.system()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / (1 << 30), 1),
        "os": system,
        "kernel": platform.release(),
    }


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def software() -> dict[str, str]:
    """Python and drivers on the client side, and which idsync (commit, and whether src/ had
    uncommitted changes when measured)."""
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    return {
        "python": platform.python_version(),
        "pymongo": _package("pymongo"),
        "mysqlclient": _package("mysqlclient"),
        "idsync": f"{_package('idsync')} at {commit}" + (" (src/ modified)" if dirty else ""),
        "dlt": _package("dlt"),  # the peer library of bench/dlt_job.py, when installed
        "java": _first_line(["java", "-version"]),
    }
