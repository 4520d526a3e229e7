"""PostgreSQL's errors as idsync's: transient (try again), terminal, or a value refused.

Classified by SQLSTATE, the server's own code for what went wrong. A connection that fails has
none (libpq reports it by message alone): there, a refused login or a database that does not
exist is told apart by the server's words, which are not translated for a connection's errors.
"""

from __future__ import annotations

import psycopg

from idsync.errors import ConfigError, IdsyncError, TerminalError, TransientError

# Class 22 (data exception): the value, not the statement, is wrong: too long, bad encoding.
DATA_CLASS = "22"
_TRANSIENT = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
    "57014",  # query_canceled (a statement timeout, or pg_cancel_backend)
    "57P01",  # admin_shutdown (pg_terminate_backend too)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up)
    "53300",  # too_many_connections
}
_REFUSED_LOGIN = {"28000", "28P01"}  # invalid authorization, invalid password
_NO_TABLE = {"42P01", "42703"}  # undefined_table, undefined_column
_LOGIN_REFUSED_WORDS = ("password authentication failed", "no pg_hba.conf entry", 'role "')
_NO_DATABASE_WORDS = ('database "',)
_NO_SSL_WORDS = "server does not support SSL"  # sslmode=require (or verify-*) asked of it
_DENIED = "42501"  # insufficient_privilege


def is_data_error(exc: BaseException) -> bool:
    """A value the column cannot hold (or that the protocol cannot carry, such as NUL)."""
    if isinstance(exc, psycopg.DataError) and getattr(exc, "sqlstate", None) is None:
        return True  # refused by the driver before it was sent: a NUL in a text
    state = getattr(exc, "sqlstate", None) or ""
    return state.startswith(DATA_CLASS)


def _refused_connection(text: str, address: str) -> ConfigError | None:
    """A connection refused for a reason in the URL, told by libpq's words (it has no code)."""
    if any(words in text and "does not exist" in text for words in _NO_DATABASE_WORDS):
        return ConfigError(f"PostgreSQL at {address} has no such database: {text}")
    if _NO_SSL_WORDS in text:
        return ConfigError(f"PostgreSQL at {address}: {text}; change the URL's sslmode")
    return None


def pg_error(exc: Exception, address: str, doing: str) -> IdsyncError:
    """The idsync error for a driver error met while ``doing`` on the server at ``address``."""
    state = getattr(exc, "sqlstate", None) or ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not state and isinstance(exc, psycopg.OperationalError):
        if any(words in text for words in _LOGIN_REFUSED_WORDS):
            state = "28P01"
        elif (config := _refused_connection(text, address)) is not None:
            return config
    if state in _REFUSED_LOGIN:
        return TerminalError(
            f"PostgreSQL at {address} refused the login ({state}): check the user and password"
        )
    if (
        state.startswith("08")
        or state in _TRANSIENT
        or (isinstance(exc, psycopg.OperationalError) and not state)
    ):
        return TransientError(f"PostgreSQL unreachable at {address} while {doing}: {text}")
    refused = f"PostgreSQL at {address} failed while {doing}: ({state or '?'}) {text}"
    if state in _NO_TABLE:
        return ConfigError(f"{refused}; run `idsync init` to create the table")
    if state == _DENIED:
        return TerminalError(f"{refused}; grant the privilege to the user in the URL")
    return TerminalError(refused)
