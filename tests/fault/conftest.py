"""Fixtures for fault tests: private servers to break, and the CLI run as a real process."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient

from tests.fault.servers import (
    FERRETDB_BIN,
    ROOT,
    PrivateFerretDB,
    PrivateMariaDB,
    PrivatePostgres,
)

SLOW = os.environ.get("IDSYNC_SLOW_TESTS") == "1"


@pytest.fixture
def mariadb(tmp_path: Path) -> Iterator[PrivateMariaDB]:
    server = PrivateMariaDB(tmp_path / "mariadb")
    server.workdir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["mariadb", "postgres"])
def sql_server(request: pytest.FixtureRequest) -> PrivateMariaDB | PrivatePostgres:
    """A private target server of each kind in turn."""
    server: PrivateMariaDB | PrivatePostgres = request.getfixturevalue(request.param)
    return server


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    workdir = ROOT / ".local" / "pg-tests" / uuid.uuid4().hex[:12]
    workdir.mkdir(parents=True)
    server = PrivatePostgres(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def ferretdb(tmp_path: Path) -> Iterator[PrivateFerretDB]:
    if not FERRETDB_BIN.exists():
        pytest.fail(f"{FERRETDB_BIN.name} is not built: run `dev/services up`")
    server = PrivateFerretDB(tmp_path / "ferretdb")
    server.workdir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def cli_env(mongo_uri: str, mysql_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "IDSYNC_MONGO_URI": mongo_uri, "IDSYNC_MYSQL_URL": mysql_url, **extra}
    env.pop("IDSYNC_CONFIG", None)
    return env


def run_cli(
    mongo_uri: str, mysql_url: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "idsync", *args], env=cli_env(mongo_uri, mysql_url),
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def spawn_cli(mongo_uri: str, mysql_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "idsync", *args], env=cli_env(mongo_uri, mysql_url),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll until ``condition`` holds: for ordering steps, never for measuring speed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def load_ids(
    uri: str, ids: list[Any], big: bool = False, collection: str = "cluster_trips"
) -> None:
    """Source documents: tiny ({_id}) for fast scans, or ~2 KB clusters for slow ones."""
    pad = [{"_id": ObjectId(), "user_id": n, "mode": "bus", "note": "x" * 80} for n in range(20)]
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    with client:
        coll = client.get_default_database()[collection]
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            coll.insert_many([{"_id": i, "trips": pad} if big else {"_id": i} for i in chunk])


def said_once(text: str, stderr: str) -> bool:
    """Whether exactly one error line of ``stderr`` holds ``text``: a failure is logged once
    (retries before it are warnings), not said again by the CLI."""
    return sum("error: " in line and text in line for line in stderr.splitlines()) == 1


# `idsync` with Ctrl-C as from a terminal: a suite started in the background (`make test &`)
# ignores SIGINT, a child inherits that, and Python then installs no KeyboardInterrupt.
AS_FROM_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler);"
    " sys.argv[0] = 'idsync'; runpy.run_module('idsync', run_name='__main__')"
)


def stderr_until(proc: subprocess.Popen[str], marker: str) -> str:
    """The process's stderr up to the first line holding ``marker`` (or all of it, if it ended
    first): the moment something was logged, to act right after."""
    assert proc.stderr is not None
    lines: list[str] = []
    while line := proc.stderr.readline():
        lines.append(line)
        if marker in line:
            break
    return "".join(lines)


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``proc``, killed on the way out if a failed step left it running."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
