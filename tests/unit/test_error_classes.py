"""MySQL error codes to idsync errors: retried only when the server was out of reach."""

from __future__ import annotations

import MySQLdb
import psycopg
import pytest
from pymongo.errors import ConfigurationError, OperationFailure

from idsync.errors import ConfigError, IdsyncError, TerminalError, TransientError
from idsync.mongo.errors import mongo_error
from idsync.mongo.feeds import ChangeStreamsUnsupported, StreamLost
from idsync.mysql.errors import mysql_error
from idsync.postgres.errors import pg_error


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (2002, TransientError),  # cannot connect through the socket
        (2003, TransientError),  # cannot connect to the host
        (2006, TransientError),  # server has gone away
        (2013, TransientError),  # lost connection during a query
        (1205, TransientError),  # lock wait timeout
        (1927, TransientError),  # MariaDB: connection killed
        (1969, TransientError),  # MariaDB: statement timeout
        (3024, TransientError),  # MySQL: statement timeout
        (4031, TransientError),  # MySQL: disconnected after wait_timeout
        (2014, TerminalError),  # commands out of sync: a client fault, not the network
        (2059, TerminalError),  # authentication plugin cannot be loaded
        (3819, TerminalError),  # MySQL: CHECK constraint violated
        (4025, TerminalError),  # MariaDB: CHECK constraint violated
        (1142, TerminalError),  # command denied
    ],
)
def test_each_code_is_retried_only_when_a_later_try_can_work(
    code: int, kind: type[IdsyncError]
) -> None:
    error = mysql_error(MySQLdb.OperationalError(code, "message"), "db:3306", "inserting")
    assert type(error) is kind
    assert ("unreachable" in str(error)) == (kind is TransientError)


def test_a_killed_query_is_retried() -> None:
    # KILL QUERY (1317) ends one statement, like KILL CONNECTION (1927) ends its session: a
    # later try works, so both are retried.
    error = mysql_error(MySQLdb.OperationalError(1317, "interrupted"), "db:3306", "reading")
    assert isinstance(error, TransientError)


def test_a_refused_login_says_to_check_the_user_and_password() -> None:
    error = mysql_error(MySQLdb.OperationalError(1045, "Access denied"), "db:3306", "connecting")
    assert isinstance(error, TerminalError)
    assert "user and password" in str(error) and "grant" not in str(error)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (91, TransientError),  # ShutdownInProgress
        (189, TransientError),  # PrimarySteppedDown
        (10107, TransientError),  # NotWritablePrimary
        (11600, TransientError),  # InterruptedAtShutdown
        (11602, TransientError),  # InterruptedDueToReplStateChange
        (13435, TransientError),  # NotPrimaryNoSecondaryOk
        (43, TransientError),  # CursorNotFound: the cursor timed out; a new pass starts over
        (6, TransientError),  # HostUnreachable
        (89, TransientError),  # NetworkTimeout
        (13, TerminalError),  # Unauthorized
        (2, TerminalError),  # BadValue
    ],
)
def test_mongodb_refusals_are_retried_only_when_a_later_try_can_work(
    code: int, kind: type[IdsyncError]
) -> None:
    failure = OperationFailure("refused", code, {"ok": 0, "code": code, "errmsg": "refused"})
    error = mongo_error(failure, "db:27017", "reading")
    assert type(error) is kind


def test_a_driver_that_cannot_be_used_as_configured_is_a_config_error() -> None:
    # e.g. an authMechanism whose optional package is not installed: no retry installs it.
    error = mongo_error(ConfigurationError("requires pymongo-auth-aws"), "db:27017", "connecting")
    assert isinstance(error, ConfigError)


def test_a_lost_or_missing_change_stream_is_terminal_not_transient() -> None:
    assert issubclass(StreamLost, TerminalError)  # resuming from the same position fails again
    assert issubclass(ChangeStreamsUnsupported, TerminalError)
    assert ChangeStreamsUnsupported.exit_code == 2  # forced by --mode: a usage error


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ('connection failed: FATAL:  password authentication failed for user "u"', TerminalError),
        ('connection failed: FATAL:  role "u" does not exist', TerminalError),
        ('connection failed: FATAL:  database "nope" does not exist', ConfigError),
        ("connection failed: Connection refused", TransientError),
        ("connection timeout expired", TransientError),
    ],
)
def test_a_failed_postgresql_connection_is_classified_by_what_the_server_said(
    message: str, kind: type[Exception]
) -> None:
    error = pg_error(psycopg.OperationalError(message), "127.0.0.1:5432", "connecting")
    assert type(error) is kind
