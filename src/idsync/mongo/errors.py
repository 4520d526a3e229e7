"""MongoDB's URIs and errors as idsync's: the URI checked and parsed with secrets kept out of
every message; a driver error classified as transient (try again), terminal, or config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError
from pymongo.uri_parser import parse_uri

from idsync.errors import ConfigError, IdsyncError, TerminalError, TransientError
from idsync.urls import ENCODE_HINT, mongo_userinfo_problem, scrub


def server_address(parsed: Mapping[str, Any]) -> str:
    """The hosts the driver connects to, from its own parse of the URI: never a piece of the
    userinfo, however the password is written."""
    nodes = parsed.get("nodelist") or [(parsed.get("fqdn") or "localhost", None)]
    shown = [(f"[{host}]" if ":" in host else host, port) for host, port in nodes]
    return ",".join(host + (f":{port}" if port else "") for host, port in shown)


def parse_checked(uri: str) -> dict[str, Any]:
    """The driver's parse of the URI; its complaints quote pieces of the URI: scrubbed."""
    problem = mongo_userinfo_problem(uri)
    if problem:
        raise ConfigError(f"invalid MongoDB URI: {problem}")
    try:
        return parse_uri(uri)
    except OSError as exc:  # a TLS file it names is missing or unreadable
        reason = scrub(short_text(exc), uri)
        raise ConfigError(f"MongoDB URI names a file that cannot be read: {reason}") from None
    except (ConfigurationError, ValueError) as exc:
        reason = scrub(short_text(exc), uri)
        if dns_failed(exc):
            # A mongodb+srv name is resolved here already; it may resolve on a later try.
            raise TransientError(f"MongoDB unreachable: DNS lookup failed: {reason}") from None
        raise ConfigError(f"invalid MongoDB URI: {reason}; {ENCODE_HINT}") from None


def short_text(exc: BaseException) -> str:
    """The first useful clause of a driver error, without pymongo's topology dump."""
    text = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0]
    return text.splitlines()[0] if text else type(exc).__name__


def dns_failed(exc: BaseException) -> bool:
    """Whether a mongodb+srv URI failed on its DNS lookup (pymongo wraps dnspython's error in a
    ConfigurationError): the name may resolve later, unlike a malformed URI."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__module__.split(".")[0] == "dns":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# Refusals that mean the server is failing over, shutting down, stale or slow (the retryable
# reads and resumable change-stream errors of MongoDB's driver specifications, for servers that
# give no error label): a later pass works once it is back.
RETRYABLE_CODES = frozenset(
    {6, 7, 43, 63, 89, 91, 133, 150, 189, 234, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436}
)


def mongo_error(exc: PyMongoError, address: str, doing: str) -> IdsyncError:
    """Turn a driver error into a one-line idsync error naming the server."""
    if isinstance(exc, OperationFailure):
        if exc.code in RETRYABLE_CODES or exc.has_error_label("RetryableError"):
            return TransientError(f"MongoDB at {address} failed {doing}: {short_text(exc)}")
        return TerminalError(f"MongoDB at {address} refused {doing}: {short_text(exc)}")
    if isinstance(exc, ConfigurationError) and not dns_failed(exc):
        # e.g. an authMechanism whose optional package is missing: no retry installs it.
        return ConfigError(f"MongoDB at {address} cannot be used as configured: {short_text(exc)}")
    return TransientError(f"MongoDB unreachable at {address} while {doing}: {short_text(exc)}")
