"""A bad network between idsync and a server, for real: Toxiproxy between them, its toxics
making the link slow, cut mid-reply or silent. Each test makes its own proxy and removes it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from bson import ObjectId

from tests.conftest import BOTH_TARGETS, Env
from tests.fault.conftest import load_ids, reaped, spawn_cli, stderr_until, wait_for
from tests.fault.toxiproxy import Proxy, reachable
from tests.watch_support import Daemon, Writer, free_port, http_get, wait_until

pytestmark = pytest.mark.fault
STREAMS = ("downstream", "upstream")


def _address(url: str) -> str:
    """host:port of a URL, without its user and password."""
    return urlsplit(url).netloc.rpartition("@")[2]


@pytest.fixture
def target_link(env: Env) -> Iterator[Proxy]:
    """A proxy in front of the test's SQL target."""
    with _link(env, "target") as proxy:
        yield proxy


def spawn_env(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """The CLI in a process of its own with ``env`` over the test's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "idsync", *args], env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@BOTH_TARGETS
def test_a_link_reset_mid_run_is_retried_and_ends_exact(
    env: Env, target_link: Proxy, tmp_path: Path
) -> None:
    """Every connection reset for a moment while batches commit: a transient failure, a new
    pass once the link is back, nothing twice; --list-missing keeps what the first pass
    inserted (the next pass no longer finds those ids missing)."""
    ids = [ObjectId() for _ in range(40_000)]
    load_ids(env.mongo_uri, ids)
    env.init_table()
    target_link.add("latency", "downstream", latency=20)  # a run long enough to cut
    listed = tmp_path / "inserted.txt"
    args = ("run", "--json", "--no-log-ids", "--batch-size", "500", "--retries", "5",
            "--list-missing", str(listed))  # fmt: skip
    proc = spawn_cli(env.mongo_uri, target_link.url(env.mysql_url), *args)
    try:
        wait_for(lambda: len(env.target_ids()) > 0 or proc.poll() is not None, "a first batch")
        reset = target_link.add("reset_peer", "downstream", timeout=0)
        time.sleep(1.0)
        target_link.remove(reset)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    report = json.loads(out)
    assert proc.returncode == 0, err[-2000:]
    assert report["retried"], report  # the reset was seen, and retried
    assert env.target_ids() == sorted(str(i) for i in ids)
    # A batch whose commit's reply the reset lost is still this run's, listed and counted.
    assert sorted(listed.read_text().split()) == env.target_ids()
    assert report["inserted"] == len(ids), report


# How long each fault lasts while `watch` runs, and whether /healthz must say so meanwhile.
WATCH_FAULTS: dict[str, tuple[float, bool]] = {
    "partition": (30.0, True),  # the proxy refuses and closes every connection
    "silent": (12.0, True),  # data stops both ways, sockets stay open
    "reset": (2.0, False),  # every connection reset as soon as data flows
    "cut": (2.0, False),  # every connection closed after 2 KB from the server
    "slow": (5.0, False),  # 100 ± 50 ms each way
    "narrow": (5.0, False),  # 64 KB/s each way
}


def _fault(link: Proxy, fault: str) -> Callable[[], None]:
    """Start ``fault`` on ``link``; the function that ends it."""
    if fault == "partition":
        link.enable(False)
        return lambda: link.enable(True)
    if fault == "silent":
        toxics = [link.add("timeout", stream, timeout=0) for stream in STREAMS]
    elif fault == "reset":
        toxics = [link.add("reset_peer", "downstream", timeout=0)]
    elif fault == "cut":
        toxics = [link.add("limit_data", "downstream", bytes=2000)]
    elif fault == "narrow":
        toxics = [link.add("bandwidth", stream, rate=64) for stream in STREAMS]
    else:
        toxics = [link.add("latency", stream, latency=100, jitter=50) for stream in STREAMS]

    def heal() -> None:
        for toxic in toxics:
            link.remove(toxic)

    return heal


@pytest.mark.parametrize(
    ("watch_env", "side"), [("mysql", "source"), ("mysql", "target"), ("postgres", "target")],
    indirect=["watch_env"],
)  # fmt: skip
@pytest.mark.parametrize("fault", sorted(WATCH_FAULTS))
def test_a_bad_link_while_watching_loses_nothing(
    watch_env: Env, tmp_path: Path, side: str, fault: str
) -> None:
    """A bad link to one server while `watch` follows a change stream: partitioned for 30 s,
    silent, reset, cut after 2 KB, slow or narrow. /healthz says so when it lasts, the watcher
    reconnects when the link returns and catches up; no id is missing or twice, and the stored
    checkpoint never names an id that is not in the table."""
    env = watch_env
    env.init_table()
    lasting, unhealthy = WATCH_FAULTS[fault]
    link = Proxy(_address(env.mongo_uri if side == "source" else env.mysql_url))
    mongo = link.url(env.mongo_uri) if side == "source" else env.mongo_uri
    target = link.url(env.mysql_url) if side == "target" else env.mysql_url
    port = free_port()
    args = ["--skip-initial-pass", "--max-batch-wait", "0.05", "--batch-size", "50",
            "--no-log-ids", "--http", f"127.0.0.1:{port}", "--stuck-after", "5",
            "--backoff-max", "2", "--connect-timeout", "2"]  # fmt: skip
    daemon = Daemon(tmp_path, mongo, target, args).start()
    health = f"http://127.0.0.1:{port}/healthz"
    try:
        wait_until(lambda: "change-stream" in http_get(health)[1], "the stream to open")
        writer = Writer(env.mongo_db["cluster_trips"], total=1500).start()
        wait_until(lambda: len(env.target_ids()) >= 100, "a few batches")
        heal, began = _fault(link, fault), time.monotonic()
        if unhealthy:
            wait_until(lambda: http_get(health)[0] == 503, "/healthz to say so", lasting)
        time.sleep(max(0.0, lasting - (time.monotonic() - began)))
        heal()
        expected = writer.join()
        wait_until(lambda: len(env.target_ids()) >= len(expected), "the catch-up", 120)
        wait_until(lambda: http_get(health)[0] == 200, "/healthz to recover")
        daemon.send(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.stderr[-3000:]
        if os.environ.get("SHOW_DAEMON"):
            print(daemon.stderr)
    finally:
        daemon.kill()
        link.delete()
    assert env.target_ids() == expected  # nothing missing, nothing twice
    [(last_id,)] = env.sql("SELECT last_seen_id FROM idsync_state")
    assert last_id in expected


@BOTH_TARGETS
def test_a_link_closed_mid_insert_is_retried_and_nothing_doubles(
    env: Env, target_link: Proxy, tmp_path: Path
) -> None:
    """The link closes after a few kilobytes sent (mid-insert): the batch in flight is lost
    with its transaction, a new pass sends what is missing once the link is back."""
    ids = [ObjectId() for _ in range(20_000)]
    load_ids(env.mongo_uri, ids)
    env.init_table()
    target_link.add("latency", "downstream", latency=20)
    listed = tmp_path / "inserted.txt"
    args = ("run", "--json", "--no-log-ids", "--batch-size", "2000", "--retries", "5",
            "--list-missing", str(listed))  # fmt: skip
    proc = spawn_cli(env.mongo_uri, target_link.url(env.mysql_url), *args)
    try:
        wait_for(lambda: len(env.target_ids()) > 0 or proc.poll() is not None, "a first batch")
        cut = target_link.add("limit_data", "upstream", bytes=20_000)
        time.sleep(1.0)
        target_link.remove(cut)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    report = json.loads(out)
    assert report["retried"] and report["inserted"] == len(ids), report
    rows = env.target_ids()
    assert rows == sorted(str(i) for i in ids) and len(rows) == len(set(rows))
    assert sorted(listed.read_text().split()) == rows


# --- every command over every kind of bad link -----------------------------------------------

# The source's side is the same whatever the target: once, on MySQL; the target's on both.
LINKS = pytest.mark.parametrize(
    ("env", "side"), [("mysql", "source"), ("mysql", "target"), ("postgres", "target")],
    indirect=["env"],
)  # fmt: skip
COMMANDS = pytest.mark.parametrize("command", ["run", "check", "work"])
Toxic = tuple[str, str, dict[str, float]]
SLOW: dict[str, list[Toxic]] = {
    "latency": [("latency", stream, {"latency": 100, "jitter": 50}) for stream in STREAMS],
    "bandwidth": [("bandwidth", stream, {"rate": 64}) for stream in STREAMS],  # KB/s
}
CUTS: dict[str, Toxic] = {
    "closed mid-reply": ("limit_data", "downstream", {"bytes": 2000}),
    # Requests to MongoDB are small: a cut after 600 bytes falls in the first few.
    "closed mid-request": ("limit_data", "upstream", {"bytes": 600}),
    "reset": ("reset_peer", "downstream", {"timeout": 0}),
}


def _linked(env: Env, side: str, link: Proxy) -> dict[str, str]:
    """The command's environment with one side reached through ``link``."""
    if side == "source":
        return {"IDSYNC_MONGO_URI": link.url(env.mongo_uri), "IDSYNC_MYSQL_URL": env.mysql_url}
    return {"IDSYNC_MONGO_URI": env.mongo_uri, "IDSYNC_MYSQL_URL": link.url(env.mysql_url)}


@contextlib.contextmanager
def _link(env: Env, side: str) -> Iterator[Proxy]:
    if (why := reachable()) is not None:
        pytest.fail(f"Toxiproxy not reachable ({why}); run `dev/services up toxiproxy`")
    proxy = Proxy(_address(env.mongo_uri if side == "source" else env.mysql_url))
    try:
        yield proxy
    finally:
        proxy.delete()


def _ready(env: Env, command: str, count: int) -> list[str]:
    """``count`` source ids: for a check, all in the table already (a check proves); for a run
    or a worker, half of them (it reads the table, then writes)."""
    ids = [ObjectId() for _ in range(count)]
    load_ids(env.mongo_uri, ids)
    env.init_table()
    assert env.idsync("run", "--no-log-ids").returncode == 0
    if command != "check":
        half = [str(i) for i in ids[::2]]
        env.sql(
            f"DELETE FROM cm_cluster_id WHERE cluster_id IN ({', '.join(['%s'] * len(half))})", half
        )
    return sorted(str(i) for i in ids)


def _quiet(command: str) -> tuple[str, ...]:
    return ("--no-log-ids",) if command == "run" else ()


def _exact(env: Env, command: str, report: dict[str, Any], ids: list[str]) -> None:
    if command == "check":
        assert report["status"] == "ok" and report["proof"], report
    rows = env.target_ids()
    assert rows == ids and len(rows) == len(set(rows))


@LINKS
@COMMANDS
@pytest.mark.parametrize("slow", sorted(SLOW))
def test_a_slow_link_ends_exact(env: Env, side: str, command: str, slow: str) -> None:
    """100 ± 50 ms each way, or 64 KB/s each way: slower, never wrong, and the report says how
    long it took."""
    ids = _ready(env, command, 3000)
    with _link(env, side) as link:
        for kind, stream, attributes in SLOW[slow]:
            link.add(kind, stream, **attributes)
        done = env.idsync(command, "--json", *_quiet(command), env=_linked(env, side, link))
    report = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr[-2000:]
    assert report["duration_s"] and report["phases"]  # it says how long it took, and where
    _exact(env, command, report, ids)


@LINKS
@COMMANDS
@pytest.mark.parametrize("cut", sorted(CUTS))
def test_a_cut_link_is_retried_and_ends_exact(env: Env, side: str, command: str, cut: str) -> None:
    """The link closes after 2 KB either way, or resets: a transient failure; once the first
    attempt has failed the link heals, and the next attempt ends exact, nothing twice."""
    ids = _ready(env, command, 3000)
    kind, stream, attributes = CUTS[cut]
    with _link(env, side) as link:
        toxic = link.add(kind, stream, **attributes)
        args = (command, "--json", *_quiet(command), "--retries", "5", "--connect-timeout", "3")
        proc = spawn_env(_linked(env, side, link), *args)
        try:
            seen = stderr_until(proc, "attempt 1 failed")  # the first attempt's failure, logged
            link.remove(toxic)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    report = json.loads(out)
    assert proc.returncode == 0, seen + err[-2000:]
    assert report["retried"], report
    _exact(env, command, report, ids)


@LINKS
@COMMANDS
def test_a_silent_link_fails_within_the_socket_timeout(env: Env, side: str, command: str) -> None:
    """The link goes silent, no reset: the command fails once the timeouts the user set have
    passed, exit 1, naming the server; it never hangs."""
    _ready(env, command, 100)
    with _link(env, side) as link:
        link.add("timeout", "downstream", timeout=0)  # data stops, the socket stays open
        args = ("--socket-timeout", "2", "--connect-timeout", "2", "--retries", "0")
        # A hang is a TimeoutExpired here: the timeouts set, start-up, and a wide margin.
        done = env.idsync(command, "--json", *args, env=_linked(env, side, link), timeout=60)
    report = json.loads(done.stdout)
    server = (
        "MongoDB" if side == "source" else ("PostgreSQL" if env.kind == "postgres" else "MySQL")
    )
    assert done.returncode == 1 and server in str(report["error"]), report


@pytest.mark.parametrize("env", ["mysql", "postgres"], indirect=True)
def test_a_link_gone_silent_mid_run_fails_within_the_socket_timeout(
    env: Env, target_link: Proxy
) -> None:
    """Silence after the run has begun, not before it connects: the server's own statement
    timeout cannot be heard over such a link; the client's must end the wait."""
    load_ids(env.mongo_uri, [ObjectId() for _ in range(3000)])  # read at once: writes are slow
    env.init_table()
    target_link.add("latency", "downstream", latency=100)
    args = ("run", "--json", "--no-log-ids", "--batch-size", "100", "--retries", "0",
            "--socket-timeout", "5", "--connect-timeout", "2")  # fmt: skip
    with reaped(spawn_cli(env.mongo_uri, target_link.url(env.mysql_url), *args)) as proc:
        wait_for(lambda: len(env.target_ids()) > 0 or proc.poll() is not None, "a first batch")
        for stream in STREAMS:
            target_link.add("timeout", stream, timeout=0)
        # A hang is a TimeoutExpired: 5 s set, a margin, and a wide one for a busy machine.
        out, err = proc.communicate(timeout=60)
    report = json.loads(out)
    server = "PostgreSQL" if env.kind == "postgres" else "MySQL"
    assert proc.returncode == 1 and server in str(report["error"]), (report, err[-2000:])
