"""Every config key and flag is type-checked: a wrong type is a ConfigError naming the key."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idsync.config import Job, Settings, load_file, resolve_job, resolve_settings
from idsync.errors import ConfigError

MONGO = "mongodb://127.0.0.1:27018/maas"
MYSQL = "mysql://u:p@127.0.0.1:3306/maas"
VALID_JOB = {"collection": "c", "table": "t", "column": "id"}


def _toml(value: object) -> str:
    """A TOML literal for ``value`` (JSON strings are valid TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):  # TOML wants DEL escaped, and no surrogate-pair escapes
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_BY_KIND: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "int": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "float": st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda f: f != int(f) if math.isfinite(f) else True
    ),
    "str": _TEXT,
    "list": st.lists(st.integers(0, 9), max_size=3),
    "table": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), max_size=2),
}
# What each declared type accepts from TOML; everything else is the wrong type.
_ACCEPTS = {"str": {"str"}, "str | None": {"str"}, "int": {"int"}, "float": {"int", "float"},
            "bool": {"bool"}}  # fmt: skip


def _wrong(declared: str) -> st.SearchStrategy[Any]:
    return st.one_of(*(s for kind, s in _BY_KIND.items() if kind not in _ACCEPTS[declared]))


_SETTING_CASES = [(f.name, f.type) for f in fields(Settings)]
_JOB_CASES = [(f.name, f.type) for f in fields(Job) if f.name != "name"]


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "idsync.toml"
    path.write_text(text, encoding="utf-8")
    file = load_file(path)
    resolve_settings({}, {}, file)
    for name in file.jobs:
        resolve_job(name, file, None)


@pytest.mark.parametrize(("key", "declared"), _SETTING_CASES)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_setting_of_the_wrong_type_is_a_config_error_naming_it(
    tmp_path: Path, key: str, declared: str, data: st.DataObject
) -> None:
    value = data.draw(_wrong(str(declared)))
    body = {"mongo_uri": MONGO, "mysql_url": MYSQL, key: value}
    text = "[settings]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in body.items())
    with pytest.raises(ConfigError, match=key):
        _load(tmp_path, text)


@pytest.mark.parametrize(("key", "declared"), _JOB_CASES)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_job_key_of_the_wrong_type_is_a_config_error_naming_it(
    tmp_path: Path, key: str, declared: str, data: st.DataObject
) -> None:
    value = data.draw(_wrong(str(declared)))
    body = {**VALID_JOB, key: value}
    text = "[jobs.x]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in body.items())
    with pytest.raises(ConfigError, match=key):
        _load(tmp_path, text)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("mongo_uri = 5", "mongo_uri"),
        ('check_exact = "no"', "check_exact"),
        ("check_exact = 1", "check_exact"),
        ("read_batch_size = 1.5", "read_batch_size"),
        ("read_batch_size = true", "read_batch_size"),
        ("retries = 2.0", "retries"),
        ('connect_timeout_s = "10"', "connect_timeout_s"),
        ("connect_timeout_s = nan", "connect_timeout_s"),
        ("socket_timeout_s = inf", "socket_timeout_s"),
        ("lock_timeout_s = 1e300", "lock_timeout_s"),
        ("retry_backoff_s = nan", "retry_backoff_s"),
    ],
)
def test_the_issue_s_settings(tmp_path: Path, line: str, key: str) -> None:
    urls = f'mongo_uri = "{MONGO}"\nmysql_url = "{MYSQL}"\n'.replace(key, "#")
    with pytest.raises(ConfigError, match=key):
        _load(tmp_path, f"[settings]\n{urls}{line}\n")


def test_floats_accept_integers_and_a_bool_is_no_int(tmp_path: Path) -> None:
    path = tmp_path / "idsync.toml"
    path.write_text("[settings]\nconnect_timeout_s = 3\n")
    settings = resolve_settings({"mongo_uri": MONGO, "mysql_url": MYSQL}, {}, load_file(path))
    assert settings.connect_timeout_s == 3
    with pytest.raises(ConfigError, match="batch_size"):
        Job(batch_size=True)
    with pytest.raises(ConfigError, match="read_batch_size"):
        Settings(mongo_uri=MONGO, mysql_url=MYSQL, read_batch_size=True)


def test_a_wrong_type_never_echoes_a_url(tmp_path: Path) -> None:
    path = tmp_path / "idsync.toml"
    path.write_text('[settings]\nmysql_url = ["mysql://u:hunter2@h/db"]\n')
    with pytest.raises(ConfigError, match="mysql_url") as caught:
        _load(tmp_path, path.read_text())
    assert "hunter2" not in str(caught.value)
