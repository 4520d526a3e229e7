"""Mirror mode under faults: a run killed while deleting, the source lost while re-verifying."""

from __future__ import annotations

import json

import pytest
from bson import ObjectId

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
