"""A source collection that does not exist is a config error, not an empty source.

MongoDB creates collections lazily: a misspelt name reads as an empty collection, so without
this check a typo would be a clean run (into an empty table) or a quiet "collection empty".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bson import ObjectId

from idsync import Job, sync
from idsync.errors import ConfigError, GuardError
from tests.conftest import Env

_TYPO = "no collection clustr_trips in database {db}; did you mean cluster_trips?"


def _config(tmp_path: Path, *extra: str) -> str:
    path = tmp_path / "idsync.toml"
    lines = ["[jobs.typo]", 'collection = "clustr_trips"', 'table = "cm_cluster_id"']
    path.write_text("\n".join([*lines, 'column = "cluster_id"', *extra]) + "\n")
    return str(path)


@pytest.fixture
def typo_env(env: Env) -> Env:
    env.add_source([ObjectId() for _ in range(3)])
    env.init_table()
    env.idsync("init")  # idsync_runs too: a history row must not be an "ok"
    return env


@pytest.mark.parametrize("command", ["run", "check", "watch"])
def test_a_collection_that_does_not_exist_is_a_config_error(
    typo_env: Env, tmp_path: Path, command: str
) -> None:
    env = typo_env
    args = [command, "--config", _config(tmp_path), "--job", "typo", "--json"]
    if command == "watch":
        args += ["--mode", "poll"]
    done = env.idsync(*args, timeout=60)
    assert done.returncode == 2, done.stderr
    assert _TYPO.format(db=env.mongo_db.name) in done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["exit_code"] == 2
    assert env.target_ids() == []
    assert all(row[0] != "ok" for row in env.sql("SELECT status FROM idsync_runs"))


def test_the_library_raises_a_config_error(typo_env: Env) -> None:
    with pytest.raises(ConfigError, match="did you mean cluster_trips"):
        sync(Job(name="typo", collection="clustr_trips"), typo_env.settings())


def test_allow_missing_source_accepts_it(typo_env: Env, tmp_path: Path) -> None:
    config = _config(tmp_path, "allow_missing_source = true")
    done = typo_env.idsync("run", "--config", config, "--job", "typo", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["source_ids"] == 0


def test_the_flag_accepts_it_for_the_built_in_job(env: Env) -> None:
    env.mongo_db.drop_collection("cluster_trips")
    env.init_table()
    assert env.idsync("run").returncode == 2
    done = env.idsync("run", "--allow-missing-source", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["source_ids"] == 0


def test_allow_missing_source_must_be_a_boolean(typo_env: Env, tmp_path: Path) -> None:
    config = _config(tmp_path, 'allow_missing_source = "yes"')
    done = typo_env.idsync("run", "--config", config, "--job", "typo")
    assert done.returncode == 2 and "allow_missing_source" in done.stderr


def test_an_existing_empty_collection_is_still_an_empty_source(env: Env) -> None:
    env.mongo_db.create_collection("empty_one")
    env.init_table()
    job = Job(name="empty", collection="empty_one")
    assert sync(job, env.settings()).source_ids == 0  # empty table: nothing to refuse
    env.sql("INSERT INTO cm_cluster_id (cluster_id) VALUES ('x')")
    with pytest.raises(GuardError, match="has no ids"):  # the empty-source guard, as before
        sync(job, env.settings())


def test_a_database_without_collections_says_so(env: Env) -> None:
    env.init_table()
    with pytest.raises(ConfigError, match=r"no collection nothing_here in database \w+ \(the"):
        sync(Job(name="none", collection="nothing_here", mongo_db="idsync_absent"), env.settings())


def test_doctor_fails_on_it(typo_env: Env, tmp_path: Path) -> None:
    done = typo_env.idsync("doctor", "--config", _config(tmp_path), "--job", "typo", "--json")
    assert done.returncode == 1, done.stdout
    found = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    assert found["collection"]["level"] == "fail"
    assert "did you mean cluster_trips?" in found["collection"]["detail"]
    assert "id-types" not in found  # no "0 sampled: collection empty" for a missing one
