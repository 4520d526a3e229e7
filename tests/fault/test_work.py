"""`idsync work`: many processes on one round of ranges; killed, interrupted and resumed, they
end with every id once."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from bson import ObjectId

from tests.conftest import BOTH_TARGETS, Env, limited_user
from tests.fault.conftest import load_ids, reaped, spawn_cli, wait_for
from tests.fault.toxiproxy import Proxy

pytestmark = pytest.mark.fault


def _source(env: Env, count: int) -> list[str]:
    """``count`` ObjectIds spread over a day, a few `_id`s of other types, the table made with
    a third of them in it already; every id's text, sorted."""
    base = int(time.time()) - 86_400
    ids: list[Any] = [
        ObjectId((base + 86_400 * n // count).to_bytes(4, "big") + n.to_bytes(8, "big"))
        for n in range(count)
    ]
    ids += ["a-string-id", 42]
    load_ids(env.mongo_uri, ids)
    env.init_table()
    present = [str(i) for i in ids[::3]]
    for start in range(0, len(present), 1000):
        chunk = present[start : start + 1000]
        marks = ", ".join(["(%s)"] * len(chunk))
        env.sql(f"INSERT INTO cm_cluster_id (cluster_id) VALUES {marks}", chunk)
    return sorted(str(i) for i in ids)


def _ranges(env: Env) -> list[tuple[Any, ...]]:
    return env.sql("SELECT idx, state, attempts FROM idsync_ranges ORDER BY round_id, idx")


@BOTH_TARGETS
def test_four_workers_at_once_end_exact(env: Env) -> None:
    expected = _source(env, 6000)
    missing = len(expected) - len(env.target_ids())
    args = ("work", "--json", "--ranges", "6", "--read-batch-size", "500")
    workers = [spawn_cli(env.mongo_uri, env.mysql_url, *args) for _ in range(4)]
    reports = []
    for proc in workers:
        with reaped(proc):
            out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        reports.append(json.loads(out))
    rows = env.target_ids()
    assert rows == expected and len(rows) == len(set(rows))
    assert sum(report["inserted"] for report in reports) == missing  # nothing inserted twice
    assert all(state == "done" for _, state, _ in _ranges(env))


def test_a_killed_worker_leaves_its_range_to_the_others_after_its_lease(env: Env) -> None:
    """kill -9 mid-range: its claim stays until the lease ends, then another worker redoes the
    range; nothing missing, nothing twice."""
    expected = _source(env, 20_000)
    args = ("work", "--ranges", "1", "--lease", "3", "--read-batch-size", "200", "--no-log-ids")
    doomed = spawn_cli(env.mongo_uri, env.mysql_url, *args[:-1])
    with reaped(doomed):
        before = len(env.target_ids())
        wait_for(lambda: len(env.target_ids()) > before or doomed.poll() is not None, "a batch")
        doomed.kill()
        doomed.wait(timeout=30)
    claimed = [row for row in _ranges(env) if row[1] == "claimed"]
    if not claimed:
        pytest.skip("the worker finished before it was killed")
    began = time.monotonic()
    done = env.idsync("work", "--json", "--lease", "3", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - began >= 1.0 or claimed[0][2] > 1  # it waited for the lease
    rows = env.target_ids()
    assert rows == expected and len(rows) == len(set(rows))
    retried = {idx: attempts for idx, state, attempts in _ranges(env)}
    assert retried[claimed[0][0]] == 2 and all(s == "done" for _, s, _ in _ranges(env))


def test_an_interrupted_round_resumes_with_only_the_unfinished_ranges(env: Env) -> None:
    expected = _source(env, 12_000)
    args = ("work", "--json", "--ranges", "8", "--read-batch-size", "100")
    first = spawn_cli(env.mongo_uri, env.mysql_url, *args)
    with reaped(first):
        wait_for(lambda: _done(env) >= 2 or first.poll() is not None, "two ranges done")
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=120)
    stopped = json.loads(out)
    if stopped["status"] == "ok":
        pytest.skip("the round ended before the signal")
    assert first.returncode == 1 and "interrupted" in stopped["error"], err
    assert not [row for row in _ranges(env) if row[1] == "claimed"]  # given back at once
    finished = {idx for idx, state, _ in _ranges(env) if state == "done"}
    done_before = len(finished)
    again = env.idsync("work", "--json", timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = json.loads(again.stdout)
    assert resumed["round_id"] == stopped["round_id"]
    assert resumed["ranges"] == resumed["ranges_in_round"] - done_before
    assert all(attempts == 1 for idx, _, attempts in _ranges(env) if idx in finished)
    assert env.target_ids() == expected


def _done(env: Env) -> int:
    try:
        return sum(state == "done" for _, state, _ in _ranges(env))
    except Exception:  # the ledger is not there yet
        return 0


def test_jobs_of_one_name_on_other_tables_never_share_a_round(env: Env, tmp_path: Path) -> None:
    """A round belongs to what it syncs: a job of the same name on another collection and
    table (another config file, another --mongo-db) plans its own."""
    load_ids(env.mongo_uri, [ObjectId() for _ in range(500)], collection="coll_a")
    load_ids(env.mongo_uri, [ObjectId() for _ in range(500)], collection="coll_b")
    configs = {}
    for side in ("a", "b"):
        configs[side] = tmp_path / f"{side}.toml"
        configs[side].write_text(
            f'[jobs.ids]\ncollection = "coll_{side}"\ntable = "t_{side}"\ncolumn = "ref"\n'
        )
        assert env.idsync("init", "--config", str(configs[side]), "--job", "ids").returncode == 0
    planned = env.idsync("plan", "--json", "--config", str(configs["a"]), "--job", "ids")
    assert planned.returncode == 0, planned.stderr
    done = env.idsync("work", "--json", "--config", str(configs["b"]), "--job", "ids")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["round_id"] != json.loads(planned.stdout)["round_id"]
    assert int(env.sql("SELECT COUNT(*) FROM t_b")[0][0]) == 500
    finished = env.idsync("work", "--json", "--config", str(configs["a"]), "--job", "ids")
    assert json.loads(finished.stdout)["round_id"] == json.loads(planned.stdout)["round_id"]
    assert int(env.sql("SELECT COUNT(*) FROM t_a")[0][0]) == 500


def test_batches_slower_than_the_lease_still_end_the_round(env: Env) -> None:
    """The lease beats on its own while a batch takes longer than it: live workers never take
    each other's ranges, and the round ends."""
    expected = _source(env, 2000)
    with contextlib.ExitStack() as cleanup:
        link = Proxy(urlsplit(env.mongo_uri).netloc)
        cleanup.callback(link.delete)
        link.add("latency", "downstream", latency=1300)
        args = ("work", "--json", "--ranges", "2", "--lease", "1", "--read-batch-size", "400")
        workers = [
            cleanup.enter_context(reaped(spawn_cli(link.url(env.mongo_uri), env.mysql_url, *args)))
            for _ in range(3)
        ]
        for proc in workers:
            _, err = proc.communicate(timeout=180)  # a livelock is a TimeoutExpired
            assert proc.returncode == 0, err[-2000:]
    assert env.target_ids() == expected


@BOTH_TARGETS
def test_a_worker_needs_no_create_once_init_made_the_ledger(env: Env) -> None:
    expected = _source(env, 300)
    assert env.idsync("init").returncode == 0  # also makes idsync_ranges
    grants = ["SELECT, INSERT, UPDATE ON cm_cluster_id", "SELECT, INSERT, UPDATE ON idsync_ranges",
              "SELECT, INSERT ON idsync_runs"]  # fmt: skip
    with limited_user(env, grants) as url:
        done = env.idsync("work", "--json", env={"IDSYNC_MYSQL_URL": url})
    assert done.returncode == 0, done.stderr[-2000:]
    assert env.target_ids() == expected


def test_a_late_worker_finds_the_round_done(env: Env) -> None:
    """A pod restarted or a task retried after the round ended reads nothing again alone."""
    expected = _source(env, 600)
    first = json.loads(env.idsync("work", "--json", "--ranges", "4").stdout)
    late = env.idsync("work", "--json")
    assert late.returncode == 0, late.stderr
    again = json.loads(late.stdout)
    assert (again["round_id"], again["ranges"], again["source_ids"]) == (first["round_id"], 0, 0)
    anew = json.loads(env.idsync("work", "--json", "--fresh-for", "0").stdout)
    assert anew["round_id"] > first["round_id"] and anew["ranges"] == anew["ranges_in_round"]
    assert env.target_ids() == expected


def test_status_shows_the_round_and_a_done_round_is_a_success(env: Env) -> None:
    _source(env, 400)
    assert env.idsync("init").returncode == 0
    assert env.idsync("plan", "--ranges", "4").returncode == 0
    planned = json.loads(env.idsync("status", "--json").stdout)
    [(round_)] = planned["work_rounds"]
    assert (round_["todo"], round_["done"], round_["finished"]) == (5, 0, False)
    assert round_["key"].startswith("update-cluster-id@")
    assert env.idsync("status", "--json", "--max-age", "1h").returncode == 4  # no success yet
    assert env.idsync("work").returncode == 0
    done = env.idsync("status", "--max-age", "1h")
    assert done.returncode == 0, done.stdout  # the worker's round counts as a success
    assert "5/5 ranges done, 0 claimed (0 past their lease), 0 left" in done.stdout


@BOTH_TARGETS
def test_a_round_resumed_long_after_redoes_the_ranges_new_documents_went_to(env: Env) -> None:
    """A round left unfinished, resumed later: the ranges that take new documents (the last
    ObjectIds', open above, and the rest) were done long before; they are done again, so the
    round's success covers the documents created meanwhile."""
    _source(env, 600)
    assert env.idsync("work", "--ranges", "4").returncode == 0
    env.sql("UPDATE idsync_ranges SET state = 'todo' WHERE idx = 1")
    env.sql(
        "UPDATE idsync_ranges SET finished_at = finished_at - INTERVAL '1' HOUR"
        " WHERE kind = 'rest' OR hi IS NULL"
    )
    load_ids(env.mongo_uri, [ObjectId() for _ in range(5)] + ["late-string"])
    done = env.idsync("work", "--json", "--fresh-for", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    client_ids = _all_source_ids(env)
    assert env.target_ids() == client_ids


@BOTH_TARGETS
def test_a_late_worker_reports_the_rounds_rejections(env: Env) -> None:
    """A pod retried after the round ended says the round's outcome (partial), not ok."""
    load_ids(env.mongo_uri, [ObjectId() for _ in range(50)] + [3.5, True])
    env.init_table()
    first = env.idsync("work", "--json")
    assert first.returncode == 4, first.stderr[-2000:]
    late = env.idsync("work", "--json")
    assert late.returncode == 4, late.stderr[-2000:]
    report = json.loads(late.stdout)
    assert (report["status"], report["round_rejected"], report["ranges"]) == ("partial", 2, 0)


@BOTH_TARGETS
def test_a_round_from_a_clock_that_ran_ahead_is_never_fresh(env: Env) -> None:
    expected = _source(env, 300)
    assert env.idsync("work").returncode == 0
    env.sql("UPDATE idsync_ranges SET round_id = round_id + 86400000")  # planned "tomorrow"
    late = [ObjectId() for _ in range(7)]
    load_ids(env.mongo_uri, late)
    done = env.idsync("work", "--json", "--fresh-for", "60")
    assert done.returncode == 0, done.stderr[-2000:]
    assert env.target_ids() == sorted(expected + [str(oid) for oid in late])


def _all_source_ids(env: Env) -> list[str]:
    return sorted(str(doc["_id"]) for doc in env.mongo_db["cluster_trips"].find({}, {"_id": 1}))


@pytest.mark.parametrize("watch_env", ["mysql", "postgres"], indirect=True)
def test_two_ids_of_one_text_are_rejected_as_run_rejects_them(watch_env: Env) -> None:
    """int 5 and "5", or an ObjectId and a string of its text (mongo-java-server keeps both):
    the second is rejected, exit 4, as `run` does; never two documents on one row, ok."""
    env = watch_env
    oid = ObjectId()
    load_ids(env.mongo_uri, [5, "5", "x", oid, str(oid)])
    env.init_table()
    done = env.idsync("work", "--json")
    assert done.returncode == 4, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["rejected"] == 2, report
    assert env.target_ids() == sorted(["5", "x", str(oid)])
