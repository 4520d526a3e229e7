"""Mirror mode under faults: a run killed while deleting, the source lost while re-verifying."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import ObjectId

from idsync import Job, RunOptions, sync
from idsync.errors import TransientError
from idsync.targets import open_target
from tests.conftest import BOTH_TARGETS, Env
from tests.fault.conftest import load_ids, run_cli, spawn_cli, wait_for
from tests.fault.toxiproxy import Proxy, reachable

pytestmark = pytest.mark.fault


def _fill(env: Env, source: list[str], orphans: list[str]) -> None:
    load_ids(env.mongo_uri, [ObjectId(text) for text in source])
    env.init_table()
    cur = env.mysql.cursor()
    rows = [(text,) for text in source + orphans]
    for start in range(0, len(rows), 5000):
        cur.executemany(
            "INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", rows[start : start + 5000]
        )
    if env.kind == "mysql":
        env.mysql.commit()


@BOTH_TARGETS
def test_killed_mid_delete_then_run_again_ends_exact(env: Env) -> None:
    source = sorted(str(ObjectId()) for _ in range(2000))
    orphans = sorted(str(ObjectId()) for _ in range(8_000))
    _fill(env, source, orphans)
    args = ("run", "--delete-orphans", "--force", "--no-log-ids", "--batch-size", "100", "--json")
    doomed = spawn_cli(env.mongo_uri, env.mysql_url, *args)
    try:
        wait_for(lambda: len(env.target_ids()) < 9_900, "the first deletes", timeout=120)
    finally:
        doomed.kill()
        doomed.communicate()
    left = len(env.target_ids()) - len(source)
    if left == 0:
        pytest.skip("the run finished before it was killed")
    done = run_cli(env.mongo_uri, env.mysql_url, *args)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["deleted"] == report["orphans"] == left
    assert env.target_ids() == source


@BOTH_TARGETS
def test_the_source_lost_mid_delete_deletes_nothing_more(env: Env) -> None:
    """MongoDB's link cut while the run re-verifies orphans, their rows locked: the batch in
    hand is rolled back, the run fails; run again, it ends exact."""
    if (why := reachable()) is not None:
        pytest.fail(f"Toxiproxy not reachable ({why}); run `dev/services up toxiproxy`")
    source = sorted(str(ObjectId()) for _ in range(2000))
    orphans = sorted(str(ObjectId()) for _ in range(8_000))
    _fill(env, source, orphans)
    link = Proxy(env.mongo_uri.split("/")[2])
    try:
        args = ("run", "--delete-orphans", "--force", "--no-log-ids", "--batch-size", "100",
                "--retries", "0", "--socket-timeout", "3", "--json")  # fmt: skip
        failing = spawn_cli(link.url(env.mongo_uri), env.mysql_url, *args)
        wait_for(lambda: len(env.target_ids()) < 9_900, "the first deletes", timeout=120)
        link.enable(False)
        out, err = failing.communicate(timeout=60)
        if failing.returncode == 0:
            pytest.skip("the run finished before the link was cut")
        assert failing.returncode == 1, err
        assert json.loads(out)["status"] == "failed"
        assert set(source) <= set(env.target_ids())
        link.enable(True)
        done = run_cli(link.url(env.mongo_uri), env.mysql_url, *args)
        assert done.returncode == 0, done.stderr
    finally:
        link.delete()
    assert env.target_ids() == source


@BOTH_TARGETS
@pytest.mark.parametrize("action", ["delete", "mark:deleted_at"])
def test_a_delete_batch_whose_commit_reply_was_lost_is_counted_once(
    env: Env, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's rows are gone (or marked) but the reply never came: the next pass finds them
    gone and counts them as this run's, as a lost insert's reply is settled."""
    job = Job(batch_size=100, orphan_action=action)
    load_ids(env.mongo_uri, [ObjectId() for _ in range(500)])
    env.init_table(job)
    orphans = sorted(str(ObjectId()) for _ in range(250))
    cur = env.mysql.cursor()
    cur.executemany("INSERT INTO cm_cluster_id (cluster_id) VALUES (%s)", [(t,) for t in orphans])
    if env.kind == "mysql":
        env.mysql.commit()
    target_class = type(open_target(env.settings(), job))
    real = target_class.delete_orphans
    lost: list[int] = []

    def committed_then_reply_lost(self: Any, texts: Any, live: Any) -> Any:
        result = real(self, texts, live)
        if not lost:
            lost.append(len(result.deleted))
            raise TransientError("the server's reply to COMMIT was lost (the link reset)")
        return result

    monkeypatch.setattr(target_class, "delete_orphans", committed_then_reply_lost)
    options = RunOptions(delete_orphans=True, force=True, log_ids=False, record_history=False)
    report = sync(job, env.settings(retries=2, retry_backoff_s=0.0), options)
    assert lost == [100] and report.retried and report.status == "ok"
    assert (report.deleted, report.deleted_rows, report.orphans) == (250, 250, 150)
    assert len(report.deleted_samples) == 20
