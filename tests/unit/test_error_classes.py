"""MySQL error codes to idsync errors: retried only when the server was out of reach."""

from __future__ import annotations

import MySQLdb
import pytest

from idsync.errors import IdsyncError, TerminalError, TransientError
from idsync.mysql_errors import mysql_error


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
