"""How MySQL's errors are read: which are worth a retry, which are the user's to fix.

Client errors (2000-2999) that mean the server could not be reached or was lost are transient;
so are lock waits, deadlocks and timeouts. The server's own refusals (a CHECK constraint, a
privilege, a missing table) are not: no retry can fix them.
"""

from __future__ import annotations

from MySQLdb.constants import CR, ER

from idsync.errors import ConfigError, IdsyncError, TerminalError, TransientError

# Errors that mean "this value cannot be stored as given": isolated per id, never retried.
DATA_ERRORS = {
    ER.DATA_TOO_LONG,
    ER.TRUNCATED_WRONG_VALUE_FOR_FIELD,
    ER.WARN_DATA_TRUNCATED,
    ER.BAD_NULL_ERROR,
}
_NO_TABLE = {ER.NO_SUCH_TABLE, ER.BAD_FIELD_ERROR}
DENIED = {
    ER.TABLEACCESS_DENIED_ERROR,
    ER.COLUMNACCESS_DENIED_ERROR,
    ER.DBACCESS_DENIED_ERROR,
    ER.ACCESS_DENIED_ERROR,
    ER.SPECIFIC_ACCESS_DENIED_ERROR,
}
# Errors a privilege probe (:meth:`MySQLTarget.denied`) may meet after the privilege check passed:
# a CREATE TABLE built to fail (the table is there, or the probe's own duplicate column), and a
# statement on a table that does not exist yet.
CREATE_PASSED = frozenset({ER.TABLE_EXISTS_ERROR, ER.DUP_FIELDNAME})
ABSENT_PASSED = frozenset({ER.NO_SUCH_TABLE})
LOCK_CONFLICTS = {ER.LOCK_DEADLOCK, ER.LOCK_WAIT_TIMEOUT}
_CONNECTION_KILLED = 1927  # MariaDB's "Connection was killed"; MySQL reports 2013 instead
# Only these client errors (2000-2999) mean the server could not be reached or was lost; the
# rest of that range are faults of the client itself. Codes from 3000 up are the server's own
# refusals (MySQL 3819, MariaDB 4025: a CHECK constraint), which no retry can fix.
_UNREACHABLE = {
    CR.SOCKET_CREATE_ERROR,
    CR.CONNECTION_ERROR,
    CR.CONN_HOST_ERROR,
    CR.IPSOCK_ERROR,
    CR.UNKNOWN_HOST,
    CR.SERVER_GONE_ERROR,
    CR.SERVER_HANDSHAKE_ERR,
    CR.SERVER_LOST,
    CR.SERVER_LOST_EXTENDED,
}
_TRANSIENT = {
    ER.LOCK_WAIT_TIMEOUT,
    ER.LOCK_DEADLOCK,
    ER.SERVER_SHUTDOWN,
    ER.CON_COUNT_ERROR,
    _CONNECTION_KILLED,
    ER.QUERY_INTERRUPTED,  # KILL QUERY ends one statement, as KILL CONNECTION its session
    1969,  # MariaDB: max_statement_time exceeded
    3024,  # MySQL: max_execution_time exceeded
    4031,  # MySQL 8.0.24+: disconnected by the server after wait_timeout
    *_UNREACHABLE,
}


def mysql_error(exc: Exception, address: str, doing: str) -> IdsyncError:
    """Turn a driver error into a one-line idsync error naming the server."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    message = exc.args[1] if len(exc.args) > 1 else str(exc)
    text = f"MySQL at {address} failed while {doing}: ({code}) {message}"
    if code in _TRANSIENT:
        return TransientError(f"MySQL unreachable at {address} while {doing}: ({code}) {message}")
    if code in _NO_TABLE:
        return ConfigError(f"{text}; run `idsync init` to create the table")
    if code == ER.BAD_DB_ERROR:  # the URL names a database the server does not have
        return ConfigError(f"{text}; check the database in the URL")
    if code == ER.ACCESS_DENIED_ERROR:
        return TerminalError(f"{text}; check the user and password in the URL")
    if code in DENIED:
        return TerminalError(f"{text}; grant the privilege to the user in the URL")
    return TerminalError(text)


def lock_failed(address: str, name: str) -> TerminalError:
    """GET_LOCK's NULL: the wait ended in an error (killed, out of memory), not a held lock."""
    return TerminalError(
        f"MySQL at {address} answered NULL to GET_LOCK({name!r}): the wait was killed or failed"
    )
