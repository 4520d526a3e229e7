"""No password, nor any 4-character piece of one, in anything idsync shows or stores.

Passwords of every printable ASCII character (and a few beyond), written raw or
percent-encoded, in either URL, for `run`, `check`, `status` and `doctor`, against servers that
are unreachable or that refuse the login: stdout, stderr, the JSON report, log lines (text and
JSON) and history rows never hold one.
"""

from __future__ import annotations

import contextlib
import json
import re
import string
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idsync.config import Settings
from idsync.metrics import Metrics
from idsync.watch.health import Health, HealthServer
from tests.conftest import BOTH_TARGETS, Env

pytestmark = pytest.mark.integration

PASSWORD_CHARS = string.ascii_letters + string.digits + string.punctuation + "éß€✓😀"
passwords = st.text(alphabet=PASSWORD_CHARS, min_size=8, max_size=20)
COMMANDS = ["run", "check", "status", "doctor"]
UNREACHABLE, WRONG_PASSWORD = "127.0.0.1:1", "refusing"
NASTY = "s3cr#t?pa/ss@wo:rd%é+x"
ISSUE = "s3cr#tPass"


def pieces(secret: str) -> set[str]:
    return {secret} | {secret[i : i + 4] for i in range(len(secret) - 3)}


# What differs between two runs whatever the password: times, durations, run ids. Masked, so
# that a piece of a password is compared with the same text of a run with another password.
_VOLATILE = re.compile(
    r'"(?:ts|started_at|finished_at|run_id)": "[^"]*"|"(?:duration_s|seconds)": [\d.]+'
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:\+00:00)?|[+-]?\d+(?:\.\d+)? s\b"
)


def shown(done: subprocess.CompletedProcess[str], env: Env) -> str:
    """Everything a person or a program reads: output, logs, JSON decoded, history rows."""
    texts = [done.stdout, done.stderr]
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        with contextlib.suppress(ValueError):  # JSON may escape a character: compare meanings
            texts.append(json.dumps(json.loads(line), ensure_ascii=False))
    rows = env.sql("SELECT COALESCE(error, '') FROM idsync_runs")
    return _VOLATILE.sub("#", "\n".join(texts + [str(row[0]) for row in rows]))


def _urls(env: Env, side: str, server: str, written: str) -> dict[str, str]:
    target, mongo = urlsplit(env.mysql_url), urlsplit(env.mongo_uri)
    if side == "target":  # the test's target, MySQL or PostgreSQL
        where = UNREACHABLE if server == UNREACHABLE else target.netloc.rpartition("@")[2]
        url = f"{target.scheme}://idsync:{written}@{where}{target.path}"
        return {"IDSYNC_MYSQL_URL" if env.kind == "mysql" else "IDSYNC_TARGET_URL": url}
    where = UNREACHABLE if server == UNREACHABLE else mongo.netloc  # FerretDB refuses logins
    return {"IDSYNC_MONGO_URI": f"mongodb://idsync:{written}@{where}{mongo.path}"}


@dataclass(frozen=True)
class Case:
    side: str
    server: str
    command: str
    as_json: bool = True
    log_format: str = "json"
    via_flags: bool = False


def _run(env: Env, case: Case, written: str) -> subprocess.CompletedProcess[str]:
    env.sql("DELETE FROM idsync_runs")  # what shown() reads is this run's row only
    urls = _urls(env, case.side, case.server, written)
    args = [case.command, "--connect-timeout", "1", "--log-format", case.log_format]
    args += ["--json"] if case.as_json else []
    args += ["--retries", "1"] if case.command in ("run", "check") else []  # one `retried`
    if case.via_flags:  # on the command line, where the environment has good ones
        for var, url in urls.items():
            args += [{"IDSYNC_MYSQL_URL": "--mysql-url", "IDSYNC_TARGET_URL": "--target-url"}
                     .get(var, "--mongo-uri"), url]  # fmt: skip
        return env.idsync(*args, timeout=60)
    return env.idsync(*args, env=urls, timeout=60)


def assert_never_shown(env: Env, password: str, written: str, case: Case) -> None:
    done = _run(env, case, written)
    assert done.returncode != 0 or case.command == "status", done.stderr
    assert "internal error" not in done.stderr
    text = shown(done, env)
    found = {p for p in pieces(password) | pieces(written) if p in text}
    if found:  # a piece may be a word idsync says anyway: compare with another password
        again = shown(_run(env, case, "~" * len(written)), env)
        found = {p for p in found if p not in again}
    assert not found, f"{sorted(found)} of {password!r} shown by {case}:\n{text}"


@pytest.fixture
def history_env(env: Env) -> Env:
    assert env.idsync("init").returncode == 0
    return env


@BOTH_TARGETS
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("side", ["target", "mongo"])
@pytest.mark.parametrize("server", [UNREACHABLE, WRONG_PASSWORD])
def test_a_nasty_password_is_never_shown(
    history_env: Env, command: str, side: str, server: str
) -> None:
    # The issue's own: pymongo accepts a raw '#', and the address once came out as "u:s3cr".
    for password, written in [(NASTY, NASTY), (NASTY, quote(NASTY, safe="")), (ISSUE, ISSUE)]:
        assert_never_shown(history_env, password, written, Case(side, server, command))


@BOTH_TARGETS
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    password=passwords,
    encode=st.booleans(),
    side=st.sampled_from(["target", "mongo"]),
    server=st.sampled_from([UNREACHABLE, WRONG_PASSWORD]),
    command=st.sampled_from(COMMANDS),
    as_json=st.booleans(),
    log_format=st.sampled_from(["text", "json"]),
    via_flags=st.booleans(),
)
def test_no_password_nor_any_piece_of_it_is_ever_shown(
    history_env: Env, password: str, encode: bool, side: str, server: str, command: str,
    as_json: bool, log_format: str, via_flags: bool,
) -> None:  # fmt: skip
    written = quote(password, safe="") if encode else password
    case = Case(side, server, command, as_json, log_format, via_flags)
    assert_never_shown(history_env, password, written, case)


def test_healthz_shows_the_watcher_s_errors_redacted() -> None:
    settings = Settings(
        mongo_uri=f"mongodb://u:{quote(NASTY, safe='')}@db/maas",
        mysql_url=f"mysql://u:{NASTY}@db/maas",
    )
    health = Health(0, secrets=settings.secrets)  # as the watcher makes it: stuck at once
    health.trouble(f"MongoDB refused: bad login {NASTY} / {quote(NASTY, safe='')}")
    with HealthServer(("127.0.0.1", 0), health, Metrics("j")) as server:
        host, port = server.address
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5)
        body = answer.value.read().decode()
    assert answer.value.code == 503 and "***" in json.loads(body)["error"]
    leaked = [p for p in pieces(NASTY) | pieces(quote(NASTY, safe="")) if p in body]
    assert not leaked, body


def test_a_usage_error_never_shows_a_password(env: Env) -> None:
    """click quotes the argument it refused: the password in it is scrubbed on stderr too."""
    for password in ("S3cretPassw0rd", "S3cr%40tPassw0rd"):
        url = f"mysql://idsync:{password}@127.0.0.1:33306/db"
        for args in (("run", "--json", url), ("run", "--connect-timeout", url)):
            done = env.idsync(*args)
            assert done.returncode == 2, done.stderr
            shown = done.stdout + done.stderr
            assert "S3cr" not in shown and "Passw0rd" not in shown, shown
