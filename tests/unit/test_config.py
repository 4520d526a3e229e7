from pathlib import Path

import pytest

from idsync.config import (
    BUILTIN_JOB,
    Job,
    MySQLURL,
    Settings,
    load_file,
    resolve_job,
    resolve_settings,
)
from idsync.errors import ConfigError
from idsync.urls import PostgresURL

MONGO = "mongodb://127.0.0.1:27018/maas"
MYSQL = "mysql://u:p@127.0.0.1:3306/maas"


def test_builtin_job_is_the_original() -> None:
    job = resolve_job(None, None, None)
    assert job == Job(
        name=BUILTIN_JOB,
        collection="cluster_trips",
        field="_id",
        table="cm_cluster_id",
        column="cluster_id",
    )
    assert resolve_job(None, None, "other").mongo_db == "other"


@pytest.mark.parametrize(
    "bad",
    ["a;b", "a`b", "a'b", 'a"b', "a--b", "a/*b*/", "a b", "", "1abc", "a" * 65, "drop table x;--"],
)
def test_hostile_sql_names_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        Job(table=bad)
    with pytest.raises(ConfigError):
        Job(column=bad)


@pytest.mark.parametrize("bad", ["a;b", "a$b", "system.users", "", "a b", "a`b", "$cmd"])
def test_hostile_collection_names_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        Job(collection=bad)


@pytest.mark.parametrize("bad", ["$where", "a..b", "a.$", ".a", "a b"])
def test_hostile_field_names_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        Job(field=bad)


def test_batch_size_bounds() -> None:
    with pytest.raises(ConfigError):
        Job(batch_size=0)
    assert Job(batch_size=1).batch_size == 1


def test_mysql_url_with_special_characters_in_password() -> None:
    url = MySQLURL.parse("mysql://id%40sync:p%40ss%3Aw%2Ford%23%25@db.example:3307/maas")
    assert (url.user, url.password, url.host, url.port, url.database) == (
        "id@sync",
        "p@ss:w/ord#%",
        "db.example",
        3307,
        "maas",
    )
    assert "p@ss" not in repr(url)


@pytest.mark.parametrize(
    "bad",
    [
        "postgres://u:p@h/db",
        "mysql://u:p@h:notaport/db",
        "mysql://u:p@h/",
        "mysql://h/d;x",
        "mysql://h/db?ssl=1",
    ],
)
def test_bad_mysql_urls(bad: str) -> None:
    with pytest.raises(ConfigError):
        MySQLURL.parse(bad)


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    path = tmp_path / "idsync.toml"
    path.write_text(
        f'[settings]\nmongo_uri = "{MONGO}"\nmysql_url = "mysql://file:f@h/filedb"\n'
        "connect_timeout_s = 3.0\n"
    )
    file = load_file(path)
    env = {"IDSYNC_MYSQL_URL": "mysql://env:e@h/envdb"}
    settings = resolve_settings({"connect_timeout_s": None}, env, file)
    assert settings.mysql.database == "envdb"
    assert settings.mongo_uri == MONGO
    assert settings.connect_timeout_s == 3.0
    settings = resolve_settings({"mysql_url": "mysql://flag:x@h/flagdb"}, env, file)
    assert settings.mysql.database == "flagdb"


def test_missing_urls_say_what_to_set() -> None:
    with pytest.raises(ConfigError, match="IDSYNC_MONGO_URI"):
        resolve_settings({}, {"IDSYNC_MYSQL_URL": MYSQL}, None)


def test_jobs_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "idsync.toml"
    path.write_text(
        '[jobs.trip-users]\ncollection = "trips"\nfield = "user.id"\ntable = "trip_user"\n'
        'column = "user_id"\nbatch_size = 100\n'
    )
    job = resolve_job("trip-users", load_file(path), None)
    assert (job.collection, job.field, job.table, job.column, job.batch_size) == (
        "trips",
        "user.id",
        "trip_user",
        "user_id",
        100,
    )
    with pytest.raises(ConfigError, match="unknown job"):
        resolve_job("nope", load_file(path), None)


@pytest.mark.parametrize(
    "text",
    [
        "[jobs.x]\ncolection = 'typo'\n",
        "[settings]\nmongo_url = 'x'\n",
        "[other]\na = 1\n",
        "[jobs.x]\ntable = 'a;drop'\n",
        "[jobs.x]\nbatch_size = 'many'\n",
        "not toml at all [",
    ],
)
def test_bad_toml_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "idsync.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_file(path)


def test_settings_validation_and_secrets() -> None:
    settings = Settings(mongo_uri="mongodb://m:s%40cret@h/db", mysql_url="mysql://u:pw@h/db")
    assert set(settings.secrets) >= {"pw", "s@cret", "s%40cret"}
    assert "pw" not in repr(settings)
    with pytest.raises(ConfigError):
        Settings(mongo_uri="http://x", mysql_url=MYSQL)
    with pytest.raises(ConfigError):
        Settings(mongo_uri=MONGO, mysql_url=MYSQL, connect_timeout_s=0)


def test_redaction_of_long_and_short_secrets() -> None:
    from idsync.urls import redact

    assert redact("x s3cr3t-pass y", ["s3cr3t-pass"]) == "x *** y"
    assert redact("mysql://u:r@h/d error for user", ["r"]) == "mysql://u:***@h/d error for user"
    assert redact("run `idsync init`", ["idsync"]) == "run `idsync init`"
    assert redact("mysql://idsync:idsync@h/d", ["idsync"]) == "mysql://idsync:***@h/d"


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ('collection = "other"\n', "column, table"),
        ('table = "t"\ncolumn = "c"\n', "collection"),
        ('collection = "c"\ntable = "t"\n', "column"),
        ("batch_size = 10\n", "collection, column, table"),
        ("", "collection, column, table"),
    ],
)
def test_a_toml_job_names_its_collection_table_and_column(
    tmp_path: Path, body: str, missing: str
) -> None:
    path = tmp_path / "idsync.toml"
    path.write_text("[jobs.x]\n" + body)
    with pytest.raises(ConfigError, match=rf"\[jobs\.x\] must name .*missing: {missing}$"):
        load_file(path)


def test_a_toml_job_defaults_only_its_field(tmp_path: Path) -> None:
    path = tmp_path / "idsync.toml"
    path.write_text('[jobs.x]\ncollection = "other"\ntable = "t"\ncolumn = "c"\n')
    job = resolve_job("x", load_file(path), None)
    assert (job.collection, job.field, job.table, job.column) == ("other", "_id", "t", "c")


def test_a_command_without_mongodb_ignores_its_uri() -> None:
    flags = {"mongo_uri": "mongodb://u:p/w@h/db", "mysql_url": MYSQL}
    settings = resolve_settings(flags, {}, None, need_mongo=False)
    assert settings.mongo_uri.startswith("mongodb://") and "p/w" not in settings.mongo_uri


def test_a_run_that_finds_nothing_says_so_in_the_jobs_own_words() -> None:
    assert Job().noun == "clusters"  # the original job's "No clusters found"
    assert Job(name="trip-users", collection="users").noun == "ids in users"
    assert Job(name="other", collection="cluster_trips").noun == "ids in cluster_trips"


def test_the_target_url_names_any_server_and_the_higher_level_wins(tmp_path: Path) -> None:
    pg = "postgresql://idsync:pw@127.0.0.1:35432/maas"
    env = {"IDSYNC_MONGO_URI": MONGO, "IDSYNC_MYSQL_URL": "mysql://env:e@h/envdb"}
    chosen = resolve_settings({"target_url": pg}, env, None)
    assert isinstance(chosen.target, PostgresURL) and chosen.target.database == "maas"
    assert "pw" in chosen.secrets
    by_env = resolve_settings({}, {**env, "IDSYNC_TARGET_URL": "mysql://env:e@h/envdb"}, None)
    assert by_env.mysql.database == "envdb"  # the same target twice is one
    path = tmp_path / "idsync.toml"
    path.write_text(f'[settings]\nmongo_uri = "{MONGO}"\ntarget_url = "{pg}"\n')
    assert resolve_settings({}, env, load_file(path)).mysql.database == "envdb"


def test_two_different_targets_at_one_level_are_refused() -> None:
    both = {"IDSYNC_MYSQL_URL": MYSQL, "IDSYNC_TARGET_URL": "postgresql://u:p@h/db"}
    with pytest.raises(ConfigError, match="different targets"):
        resolve_settings({}, {"IDSYNC_MONGO_URI": MONGO, **both}, None)
    with pytest.raises(ConfigError, match="different targets"):
        Settings(mongo_uri=MONGO, mysql_url=MYSQL, target_url="postgresql://u:p@h/db")
    with pytest.raises(ConfigError, match="no target"):
        resolve_settings({}, {"IDSYNC_MONGO_URI": MONGO}, None)
