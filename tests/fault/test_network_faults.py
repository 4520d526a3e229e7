"""A bad network between idsync and a server, for real: Toxiproxy between them, its toxics
making the link slow, cut mid-reply or silent. Each test makes its own proxy and removes it."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from bson import ObjectId

from tests.conftest import BOTH_TARGETS, MONGO_URI, Env
from tests.fault.conftest import load_ids, spawn_cli, wait_for
from tests.fault.toxiproxy import Proxy, reachable
from tests.watch_support import Daemon, Writer, free_port, http_get, wait_until

pytestmark = pytest.mark.fault


def _address(url: str) -> str:
    """host:port of a URL, without its user and password."""
    return urlsplit(url).netloc.rpartition("@")[2]


@pytest.fixture
def target_link(env: Env) -> Iterator[Proxy]:
    """A proxy in front of the test's SQL target."""
    if (why := reachable()) is not None:
        pytest.fail(f"Toxiproxy not reachable ({why}); run `dev/services up toxiproxy`")
    proxy = Proxy(_address(env.mysql_url))
    try:
        yield proxy
    finally:
        proxy.delete()


@pytest.fixture
def source_link() -> Iterator[Proxy]:
    """A proxy in front of the test's MongoDB."""
    if (why := reachable()) is not None:
        pytest.fail(f"Toxiproxy not reachable ({why}); run `dev/services up toxiproxy`")
    proxy = Proxy(_address(MONGO_URI))
    try:
        yield proxy
    finally:
        proxy.delete()


def _run(env: Env, mongo_uri: str, target_url: str, *args: str) -> tuple[int, dict[str, object]]:
    done = env.idsync(
        "run", "--json", "--no-log-ids", *args,
        env={"IDSYNC_MONGO_URI": mongo_uri, "IDSYNC_MYSQL_URL": target_url}, timeout=300,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


@BOTH_TARGETS
def test_latency_with_jitter_both_ways_ends_exact(env: Env, target_link: Proxy) -> None:
    ids = [ObjectId() for _ in range(3000)]
    env.add_source(ids)
    env.init_table()
    target_link.add("latency", "downstream", latency=100, jitter=50)
    target_link.add("latency", "upstream", latency=100, jitter=50)
    code, report = _run(env, env.mongo_uri, target_link.url(env.mysql_url), "--batch-size", "500")
    assert code == 0, report
    assert env.target_ids() == sorted(str(i) for i in ids)
    assert float(str(report["duration_s"])) > 0.2  # every round trip paid the delay


@BOTH_TARGETS
def test_a_link_reset_mid_run_is_retried_and_ends_exact(env: Env, target_link: Proxy) -> None:
    """Every connection reset for a moment while batches commit: a transient failure, a new
    pass once the link is back, nothing twice."""
    ids = [ObjectId() for _ in range(40_000)]
    load_ids(env.mongo_uri, ids)
    env.init_table()
    target_link.add("latency", "downstream", latency=20)  # a run long enough to cut
    args = ("run", "--json", "--no-log-ids", "--batch-size", "500", "--retries", "5")
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


def test_a_silent_source_fails_within_the_socket_timeout(env: Env, source_link: Proxy) -> None:
    """The link to MongoDB goes silent (no reset): the run fails once --socket-timeout has
    passed on each try, naming MongoDB, instead of hanging."""
    env.add_source([ObjectId() for _ in range(10)])
    env.init_table()
    source_link.add("timeout", "downstream", timeout=0)  # data stops, the socket stays open
    started = time.monotonic()
    args = ("--socket-timeout", "2", "--connect-timeout", "2", "--retries", "0")
    code, report = _run(env, source_link.url(env.mongo_uri), env.mysql_url, *args)
    took = time.monotonic() - started
    assert code == 1 and "MongoDB" in str(report["error"]), report
    assert took < 2 + 2 + 10, took  # the timeouts the user set, plus start-up and a margin
    assert env.target_ids() == []


PARTITION_S = 30.0


@pytest.mark.parametrize("side", ["source", "target"])
def test_a_partition_while_watching_loses_nothing(
    watch_env: Env, tmp_path: Path, side: str
) -> None:
    """A 30-second partition of one server while `watch` follows a change stream: /healthz
    says so, the watcher reconnects when the link returns and catches up; no id is missing and
    the stored checkpoint never names an id that is not in the table."""
    env = watch_env
    env.init_table()
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
        link.enable(False)
        wait_until(lambda: http_get(health)[0] == 503, "/healthz to say so", PARTITION_S)
        time.sleep(max(0.0, PARTITION_S - 5))
        link.enable(True)
        expected = writer.join()
        wait_until(lambda: len(env.target_ids()) >= len(expected), "the catch-up", 120)
        wait_until(lambda: http_get(health)[0] == 200, "/healthz to recover")
        daemon.send(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.stderr[-3000:]
    finally:
        daemon.kill()
        link.delete()
    assert env.target_ids() == expected  # nothing missing, nothing twice
    [(last_id,)] = env.sql("SELECT last_seen_id FROM idsync_state")
    assert last_id in expected


@BOTH_TARGETS
def test_a_64_kb_per_second_link_ends_exact(env: Env, target_link: Proxy) -> None:
    ids = [ObjectId() for _ in range(3000)]
    env.add_source(ids)
    env.init_table()
    target_link.add("bandwidth", "downstream", rate=64)  # KB/s
    target_link.add("bandwidth", "upstream", rate=64)
    code, report = _run(env, env.mongo_uri, target_link.url(env.mysql_url), "--batch-size", "500")
    assert code == 0, report
    assert env.target_ids() == sorted(str(i) for i in ids)


@BOTH_TARGETS
def test_a_link_closed_mid_insert_is_retried_and_nothing_doubles(
    env: Env, target_link: Proxy
) -> None:
    """The link closes after a few kilobytes sent (mid-insert): the batch in flight is lost
    with its transaction, a new pass sends what is missing once the link is back."""
    ids = [ObjectId() for _ in range(20_000)]
    load_ids(env.mongo_uri, ids)
    env.init_table()
    target_link.add("latency", "downstream", latency=20)
    args = ("run", "--json", "--no-log-ids", "--batch-size", "2000", "--retries", "5")
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
    assert json.loads(out)["retried"]
    rows = env.target_ids()
    assert rows == sorted(str(i) for i in ids) and len(rows) == len(set(rows))


@BOTH_TARGETS
def test_check_over_a_slow_link_still_proves(env: Env, target_link: Proxy) -> None:
    ids = [ObjectId() for _ in range(2000)]
    env.add_source(ids)
    env.init_table()
    assert env.idsync("run", "--no-log-ids").returncode == 0
    target_link.add("latency", "downstream", latency=100, jitter=50)
    done = env.idsync(
        "check", "--json", env={"IDSYNC_MYSQL_URL": target_link.url(env.mysql_url)}, timeout=300
    )
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["status"] == "ok" and report["proof"], report
