"""URLs and their secrets: parsed as the drivers read them, and no message ever repeats one."""

from __future__ import annotations

import string
from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idsync.config import Job, MySQLURL, Settings
from idsync.errors import ConfigError
from idsync.mongo.source import MongoSource
from idsync.urls import PostgresURL, redact

# Every printable ASCII character but whitespace, and a few beyond ASCII.
PASSWORD_CHARS = string.ascii_letters + string.digits + string.punctuation + "éß€✓😀"
passwords = st.text(alphabet=PASSWORD_CHARS, min_size=8, max_size=24)
MYSQL = "mysql://idsync:idsync@127.0.0.1:3306/maas"


def pieces(secret: str) -> set[str]:
    """The secret and every 4-character piece of it: none of them may be shown."""
    return {secret} | {secret[i : i + 4] for i in range(len(secret) - 3)}


def assert_no_piece(text: str, secret: str, baseline: str = "") -> None:
    """No piece of ``secret`` in ``text``, but those the same text shows for another password."""
    shown = [piece for piece in pieces(secret) if piece in text and piece not in baseline]
    assert not shown, f"{shown} of the password shown in: {text}"


@pytest.mark.parametrize(
    "password", ["s3cr#tPass", "pa?ss:wo/rd", "p@ss", "a#b?c/d:e", "50%off", "x]y[z"]
)
def test_raw_special_characters_in_a_mysql_password(password: str) -> None:
    url = MySQLURL.parse(f"mysql://idsync:{password}@db.example:3307/maas")
    assert (url.user, url.password, url.host, url.port, url.database) == (
        "idsync", unquote(password), "db.example", 3307, "maas"
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(password=passwords, encode=st.booleans(), port=st.sampled_from(["", ":3307"]))
def test_a_mysql_password_parses_exactly_or_is_refused_without_a_piece_of_it(
    password: str, encode: bool, port: str
) -> None:
    written = quote(password, safe="") if encode else password
    url = f"mysql://idsync:{written}@db{port}/maas?unix_socket=/run/my.sock"
    try:
        parsed = MySQLURL.parse(url)
    except ConfigError as exc:
        assert not encode, "a percent-encoded password always parses"
        assert_no_piece(str(exc), password)
        assert "percent-encode" in str(exc)
        return
    assert parsed.password == (password if encode else unquote(password))
    assert (parsed.host, parsed.database, parsed.unix_socket) == ("db", "maas", "/run/my.sock")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:pw@h/db?unix_socket=/x@h2/db2",  # two readings: refused, not guessed
        "mysql://u:zq@xk/v9j@h:notaport/db",
        "mysql://u:zqx:k9v@h:99999/db",
        "mysql://u:s3cr3tzqx@h/",
    ],
)
def test_mysql_url_errors_name_no_credential(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MySQLURL.parse(url)
    secret = url.split("://u:", 1)[1].rsplit("@", 1)[0]
    for piece in pieces(secret) - {"/db", "db"}:
        assert piece not in str(caught.value)


def test_mongo_address_is_what_the_driver_connects_to() -> None:
    settings = Settings(mongo_uri="mongodb://u:s3cr#tPass@127.0.0.1:1/maas", mysql_url=MYSQL)
    with MongoSource(settings, Job()) as source:
        assert source.address == "127.0.0.1:1"
    assert "s3cr#tPass" in settings.secrets
    settings = Settings(mongo_uri="mongodb://u:p%40ss@h1,h2:27018/maas", mysql_url=MYSQL)
    with MongoSource(settings, Job()) as source:
        assert source.address == "h1:27017,h2:27018"


@settings(max_examples=100, deadline=None)
@given(password=passwords, encode=st.booleans())
def test_a_mongo_uri_shows_only_hosts_or_is_refused_without_a_piece(
    password: str, encode: bool
) -> None:
    written = quote(password, safe="") if encode else password
    try:
        settings = Settings(mongo_uri=f"mongodb://u:{written}@127.0.0.1:1/maas", mysql_url=MYSQL)
        source = MongoSource(settings, Job())
    except ConfigError as exc:
        assert not encode
        assert_no_piece(str(exc), password)
        return
    with source:
        assert source.address == "127.0.0.1:1"
    shown = redact(f"error at {source.address}: {written}", settings.secrets)
    assert_no_piece(shown, password, baseline=f"error at {source.address}: ***")


def test_redaction_replaces_the_longest_secret_first() -> None:
    assert redact("x p@ss@h/db y", ["p@ss", "p@ss@h/db"]) == "x *** y"


@settings(max_examples=200, deadline=None)
@given(password=passwords, encode=st.booleans(), port=st.sampled_from(["", ":35432"]))
def test_a_postgresql_password_parses_exactly_or_is_refused_without_a_piece_of_it(
    password: str, encode: bool, port: str
) -> None:
    written = quote(password, safe="") if encode else password
    url = f"postgresql://idsync:{written}@db{port}/maas?sslmode=require"
    try:
        parsed = PostgresURL.parse(url)
    except ConfigError as exc:
        assert not encode, "a percent-encoded password always parses"
        assert_no_piece(str(exc), password)
        assert "percent-encode" in str(exc)
        return
    assert parsed.password == (password if encode else unquote(password))
    assert (parsed.host, parsed.database, parsed.sslmode) == ("db", "maas", "require")
    settings_ = Settings(mongo_uri="mongodb://h/db", target_url=url)
    assert parsed.password in settings_.secrets


def test_postgresql_url_forms() -> None:
    socket = PostgresURL.parse("postgres://u@localhost/maas?host=/var/run/postgresql")
    assert (socket.user, socket.password, socket.port, socket.address) == (
        "u", "", 5432, "/var/run/postgresql",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="must start with postgresql://"):
        PostgresURL.parse("pgsql://u:p@h/db")
    with pytest.raises(ConfigError, match="unknown option"):
        PostgresURL.parse("postgresql://u:p@h/db?application_name=x")
    with pytest.raises(ConfigError, match=r"sslmode 'bogus'.*verify-full"):
        PostgresURL.parse("postgresql://u:p@h/db?sslmode=bogus")
