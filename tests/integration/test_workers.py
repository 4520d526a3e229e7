"""`run --workers N`: ranges of `_id` worked by threads end with every id once, counted as one
pass counts them; where ranges cannot serve, the run is one pass and says why."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from bson import ObjectId
from click.testing import CliRunner

from idsync.check import check
from idsync.cli import cli
from idsync.config import Job, RunOptions
from idsync.errors import TransientError
from idsync.mongo.source import MongoSource
from idsync.run.sync import sync
from tests.conftest import BOTH_TARGETS, Env
from tests.fault.conftest import reaped, spawn_cli, wait_for

RANGES = {"workers": 4, "range_reads": "always"}  # the test servers read no range by index


def _load(env: Env, count: int, stored_every: int | None = None) -> list[str]:
    """``count`` ObjectIds over a day and `_id`s of other types (one a string of 24 hex
    digits); the table made, holding every ``stored_every``-th id and an orphan of each shape
    if asked. Every source id's text, sorted."""
    base = int(time.time()) - 86_400
    ids: list[Any] = [
        ObjectId((base + 86_400 * n // count).to_bytes(4, "big") + n.to_bytes(8, "big"))
        for n in range(count)
    ]
    ids += ["a-string-id", 42, "0123456789abcdef01234567"]
    for start in range(0, len(ids), 5000):
        env.mongo_db["cluster_trips"].insert_many([{"_id": i} for i in ids[start : start + 5000]])
    env.init_table()
    if stored_every:
        stored = [str(i) for i in ids[::stored_every]] + ["orphan", "f" * 24]
        marks = ", ".join(["(%s)"] * len(stored))
        env.sql(f"INSERT INTO cm_cluster_id (cluster_id) VALUES {marks}", stored)
    return sorted(str(i) for i in ids)


def _exact(env: Env, expected: list[str], extra: tuple[str, ...] = ()) -> None:
    rows = env.target_ids()
    assert len(rows) == len(set(rows))  # no id twice
    assert rows == sorted([*expected, *extra])


@BOTH_TARGETS
def test_a_first_sync_by_four_workers_stores_every_id_once(env: Env) -> None:
    expected = _load(env, 3000)
    report = sync(Job(), env.settings(read_batch_size=200, **RANGES), RunOptions(log_ids=False))
    assert (report.status, report.plan, report.workers) == ("ok", "ranges", 4)
    assert (report.inserted, report.missing, report.present) == (3003, 3003, 0)
    assert (report.source_ids, report.orphans, report.target_ids_before) == (3003, 0, 0)
    _exact(env, expected)


@BOTH_TARGETS
def test_some_missing_are_found_and_counted_as_one_pass_counts_them(env: Env) -> None:
    expected = _load(env, 3000, stored_every=100)
    settings = env.settings(read_batch_size=150, **RANGES)
    report = sync(Job(), settings, RunOptions(log_ids=False))
    one = sync(Job(), env.settings(), RunOptions(log_ids=False))  # now in sync
    assert report.plan == "ranges" and report.status == "ok"
    assert report.present == 31 and report.missing == report.inserted == 3003 - 31
    assert (report.orphans, report.target_ids_before) == (2, 33)
    assert sorted(report.orphan_samples) == ["f" * 24, "orphan"]
    assert (one.inserted, one.orphans, one.present) == (0, 2, 3003)
    _exact(env, expected, ("f" * 24, "orphan"))


@BOTH_TARGETS
def test_a_range_that_fails_transiently_is_tried_again_and_the_run_ends_exact(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _load(env, 3000, stored_every=7)
    real, failed = MongoSource.range_id_batches, threading.Event()

    def failing(self: MongoSource, low: str | None, high: str | None) -> Iterator[Any]:
        batches = real(self, low, high)
        yield next(batches)
        if low is not None and not failed.is_set():
            failed.set()
            raise TransientError("MongoDB unreachable: connection reset (a test's)")
        yield from batches

    monkeypatch.setattr(MongoSource, "range_id_batches", failing)
    settings = env.settings(read_batch_size=100, retry_backoff_s=0.0, **RANGES)
    report = sync(Job(), settings, RunOptions(log_ids=False))
    assert failed.is_set() and report.status == "ok" and report.attempts == 1
    assert len(report.retried) == 1 and "connection reset" in report.retried[0]
    assert report.inserted == len(expected) - 429  # 3,000 ObjectIds and 3 others, a 7th stored
    _exact(env, expected, ("f" * 24, "orphan"))


def test_workers_fall_back_to_one_pass_where_ranges_scan_everything(env: Env) -> None:
    expected = _load(env, 500, stored_every=2)
    report = sync(Job(), env.settings(workers=4), RunOptions(log_ids=False))
    assert (report.plan, report.workers) == ("set", 1)
    assert report.workers_reason and "does not read an `_id` range by its index" in (
        report.workers_reason
    )
    _exact(env, expected, ("f" * 24, "orphan"))


def test_a_dry_run_with_workers_is_one_pass(env: Env) -> None:
    _load(env, 300)
    report = sync(Job(), env.settings(**RANGES), RunOptions(dry_run=True, log_ids=False))
    assert (report.plan, report.workers, report.missing) == ("set", 1, 303)
    assert report.workers_reason == "a dry run predicts its inserts in one pass"
    assert env.target_ids() == []


def test_the_cli_takes_workers_from_the_flag_and_the_environment(env: Env) -> None:
    expected = _load(env, 800)
    argv = ["run", "--json", "--no-log-ids", "--range-reads", "always", "--read-batch-size", "100"]
    runner = CliRunner()
    base = {
        "IDSYNC_MONGO_URI": env.mongo_uri,
        "IDSYNC_MYSQL_URL": env.mysql_url,
        "IDSYNC_CONFIG": "",
    }
    done = runner.invoke(cli, [*argv, "--workers", "3"], env=base)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["plan"], report["workers"], report["inserted"]) == ("ranges", 3, 803)
    again = runner.invoke(cli, argv, env={**base, "IDSYNC_WORKERS": "2"})
    assert json.loads(again.stdout)["workers"] == 2
    refused = runner.invoke(cli, [*argv, "--workers", "0"], env=base)
    assert refused.exit_code == 2 and "--workers" in refused.output
    _exact(env, expected)


@BOTH_TARGETS
def test_sigterm_ends_the_workers_after_their_batches_and_a_rerun_finishes(env: Env) -> None:
    expected = _load(env, 20_000)
    args = ("run", "--json", "--no-log-ids", "--workers", "4", "--range-reads", "always",
            "--read-batch-size", "100", "--batch-size", "100")  # fmt: skip
    proc = spawn_cli(env.mongo_uri, env.mysql_url, *args)
    with reaped(proc):
        wait_for(lambda: len(env.target_ids()) > 500 or proc.poll() is not None, "a few batches")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    stopped = json.loads(out)
    if stopped["status"] == "ok":
        pytest.skip("the run ended before the signal")
    assert proc.returncode == 1 and "interrupted" in stopped["error"], err[-2000:]
    stored = env.target_ids()
    assert len(stored) == len(set(stored)) and stopped["inserted"] == len(stored)
    again = env.idsync(*args, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["inserted"] == len(expected) - len(stored)
    _exact(env, expected)


@BOTH_TARGETS
def test_check_by_four_workers_finds_the_drift_one_check_finds(env: Env) -> None:
    _load(env, 3000, stored_every=3)
    env.sql("DELETE FROM cm_cluster_id WHERE cluster_id = %s", ("a-string-id",))
    one = check(Job(), env.settings())
    ranges = check(Job(), env.settings(read_batch_size=150, **RANGES))
    assert (ranges.plan, ranges.workers, ranges.status) == ("ranges", 4, "drift")
    assert (ranges.missing, ranges.orphans) == (one.missing, one.orphans) == (2003, 2)
    assert sorted(ranges.orphan_samples) == sorted(one.orphan_samples)
    assert ranges.source_ids == one.source_ids == 3003
    assert ranges.target_ids == 1002 and ranges.proof.startswith("every id compared")
    sync(Job(), env.settings(), RunOptions(log_ids=False))
    env.sql("DELETE FROM cm_cluster_id WHERE cluster_id IN (%s, %s)", ("orphan", "f" * 24))
    agreed = check(Job(), env.settings(**RANGES))
    assert (agreed.status, agreed.missing, agreed.orphans) == ("ok", 0, 0)


def test_check_with_workers_is_one_check_where_ranges_scan_everything(env: Env) -> None:
    _load(env, 300, stored_every=2)
    report = check(Job(), env.settings(workers=4))
    assert (report.workers, report.status, report.missing) == (1, "drift", 151)
    assert report.workers_reason and "by its index" in report.workers_reason
