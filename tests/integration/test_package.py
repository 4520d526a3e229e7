"""The package as a user gets it: an sdist and a wheel built from the tree, the wheel installed
into a clean virtual environment (not editable, away from the source tree), then run for real
against the test's servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from bson import ObjectId

from idsync.version import __version__
from tests.conftest import ROOT, Env

pytestmark = pytest.mark.integration


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]


def test_the_wheel_installs_and_runs_outside_the_tree(env: Env, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    wheels = sorted(dist.glob("idsync-*.whl"))
    sdists = sorted(dist.glob("idsync-*.tar.gz"))
    assert [w.name for w in wheels] == [f"idsync-{__version__}-py3-none-any.whl"]
    assert len(sdists) == 1
    home = tmp_path / "venv"
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", wheels[0], cwd=tmp_path)
    where = _run(python, "-c", "import idsync.cli; print(idsync.cli.__file__)", cwd=tmp_path)
    assert str(home) in where and str(ROOT / "src") not in where  # the installed copy
    shown = _run(home / "bin" / "idsync", "--version", cwd=tmp_path)
    assert shown.splitlines()[0] == f"idsync {__version__}" and "psycopg " in shown
    env.add_source([ObjectId() for _ in range(25)])
    variables = {
        "PATH": os.environ.get("PATH", ""), "IDSYNC_MONGO_URI": env.mongo_uri,
        "IDSYNC_MYSQL_URL": env.mysql_url,
    }  # fmt: skip
    _run(home / "bin" / "idsync", "init", cwd=tmp_path, env=variables)
    report = json.loads(
        _run(home / "bin" / "idsync", "run", "--json", "--no-log-ids", cwd=tmp_path, env=variables)
    )
    assert (report["status"], report["inserted"]) == ("ok", 25)
    assert len(env.target_ids()) == 25
