"""Connection URLs: the MySQL URL parsed, and the secrets of any URL found without parsing it.

A password may hold any character, and a raw ``@ : / ? #`` in it can make a URL mean something
else. The rule: percent-encoding is the documented form and always works; a raw password is
accepted when exactly one reading of the URL is valid; otherwise the URL is refused. No message
about a URL repeats any part of its user name or password: they name only what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, unquote_plus

from idsync.errors import ConfigError

_SCHEMES = ("mysql", "mariadb", "mysql+mysqldb")
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# What follows the userinfo: host (or [IPv6]), port, /database, ?options. A host, port or
# database never holds '@'; options may (a socket path).
_SERVER_PART = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\[\]:/?#@]*)(?::(?P<port>[^/?#@]*))?"
    r"(?:/(?P<database>[^/?#@]*))?(?:\?(?P<query>.*))?",
    re.DOTALL,
)
_HOW = "mysql://USER:PASSWORD@HOST:PORT/DATABASE"
ENCODE_HINT = "percent-encode @ : / ? # % [ ] in the user name and password (@ as %40)"


@dataclass(frozen=True)
class MySQLURL:
    """A parsed ``mysql://user:password@host:port/database?option=value`` URL."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    unix_socket: str | None = None

    @classmethod
    def parse(cls, url: str) -> MySQLURL:
        user, password, match, query = _split("MySQL", url, _SCHEMES, ("unix_socket",), _HOW)
        return cls(
            host=match["host"].strip("[]") or "127.0.0.1",
            port=int(match["port"] or 3306),
            user=unquote(user) or "root",
            password=unquote(password),
            database=unquote(match["database"]),
            unix_socket=query.get("unix_socket"),
        )

    @property
    def address(self) -> str:
        return self.unix_socket or f"{self.host}:{self.port}"


def _split(
    what: str, url: str, schemes: tuple[str, ...], known: tuple[str, ...], how: str
) -> tuple[str, str, re.Match[str], dict[str, str]]:
    """User name and password (still encoded), the server part and the options of the one
    valid reading of ``url``; a :class:`ConfigError` that repeats none of the userinfo else."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in schemes:
        raise ConfigError(f"{what} URL must start with {schemes[0]}:// ({how})")
    readings = [r for r in _readings(rest) if _problem(r[1], known) is None]
    if len(readings) > 1:
        raise ConfigError(f"the {what} URL can be read more than one way: {ENCODE_HINT}")
    if not readings:
        server = rest.rpartition("@")[2]  # never any part of the userinfo
        raise ConfigError(f"invalid {what} URL: {_problem(server, known)}; {how}; {ENCODE_HINT}")
    userinfo, server = readings[0]
    user, _, password = (userinfo or "").partition(":")
    match = _SERVER_PART.fullmatch(server)
    assert match is not None  # _problem() accepted it
    return user, password, match, dict(parse_qsl(match["query"] or ""))


def _readings(rest: str) -> list[tuple[str | None, str]]:
    """Every (userinfo, server part) split: none, or at each '@'."""
    found: list[tuple[str | None, str]] = [(None, rest)]
    found += [(rest[:i], rest[i + 1 :]) for i, char in enumerate(rest) if char == "@"]
    return found


def _problem(server: str, known: tuple[str, ...] = ("unix_socket",)) -> str | None:
    """What is wrong with the part after the userinfo, in words that repeat none of it but
    option names; None if it is a valid host, port, database and options."""
    match = _SERVER_PART.fullmatch(server)
    if match is None:
        return "expected HOST:PORT/DATABASE after the @"
    port = match["port"]
    if port is not None and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return "the port must be a number from 1 to 65535"
    if not match["database"]:
        return "it names no database"
    if not _DATABASE.fullmatch(unquote(match["database"])):
        return "the database must be a plain name (letters, digits, _)"
    return _options_problem(match["query"] or "", known)


def _options_problem(query: str, known: tuple[str, ...]) -> str | None:
    try:
        options = parse_qsl(query, strict_parsing=bool(query))
    except ValueError:
        return "its options must be NAME=VALUE pairs"
    unknown = sorted({name for name, _ in options} - set(known))
    if unknown:
        return f"unknown option(s) {', '.join(unknown)} (known: {', '.join(known)})"
    return None


_PG_SCHEMES = ("postgresql", "postgres")
_PG_OPTIONS = ("host", "sslmode")
_PG_HOW = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class PostgresURL:
    """A parsed ``postgresql://user:password@host:port/database?sslmode=…&host=/socket/dir``
    URL (libpq's URI form; ``host=`` names a socket directory)."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    socket_dir: str | None = None
    sslmode: str | None = None

    @classmethod
    def parse(cls, url: str) -> PostgresURL:
        user, password, match, query = _split("PostgreSQL", url, _PG_SCHEMES, _PG_OPTIONS, _PG_HOW)
        sslmode = query.get("sslmode")
        if sslmode is not None and sslmode not in _SSLMODES:
            raise ConfigError(f"PostgreSQL sslmode {sslmode!r}: use one of {', '.join(_SSLMODES)}")
        return cls(
            host=match["host"].strip("[]") or "127.0.0.1",
            port=int(match["port"] or 5432),
            user=unquote(user) or "postgres",
            password=unquote(password),
            database=unquote(match["database"]),
            socket_dir=query.get("host"),
            sslmode=sslmode,
        )

    @property
    def address(self) -> str:
        return self.socket_dir or f"{self.host}:{self.port}"


def raw_secrets(*urls: str | None) -> tuple[str, ...]:
    """Passwords in URLs, found before parsing, so even a malformed URL never leaks one."""
    return tuple(dict.fromkeys(secret for url in urls for secret in url_secrets(url)))


def url_secrets(url: str | None) -> tuple[str, ...]:
    """Every string that may be the URL's password, found without parsing the URL.

    One candidate per '@' (the password ends at one of them), each as written and decoded both
    ways drivers decode it: a malformed URL is redacted as surely as a valid one.
    """
    if not url or "://" not in url:
        return ()
    rest = url.partition("://")[2]
    found: list[str] = []
    for userinfo, _ in _readings(rest)[1:]:
        assert userinfo is not None
        _, colon, password = userinfo.partition(":")
        if colon and password:
            found += [password, unquote(password), unquote_plus(password)]
    return tuple(dict.fromkeys(found))


def mongo_userinfo_problem(uri: str) -> str | None:
    """Why a MongoDB URI cannot be read safely: its driver ends the userinfo at the last '@'
    before the first '/' or '?', so a raw '/' or '?' in a password makes the rest of it a host,
    port, database or option. Refused unless every '@' belongs to the userinfo."""
    rest = uri.partition("://")[2]
    driver_reads = rest.partition("?")[0].partition("/")[0].rpartition("@")[0]
    if rest.rpartition("@")[0] != driver_reads:
        return f"an '@' after the hosts; {ENCODE_HINT}"
    return None


def credential_region(url: str) -> str:
    """The text that may hold a user name or password: between '://' and the last '@'."""
    rest = url.partition("://")[2]
    return rest.rpartition("@")[0]


def scrub(text: str, url: str, shortest: int = 4) -> str:
    """``text`` with every run of ``shortest`` or more characters of the URL's credential
    region replaced: for driver messages about a URL, which quote whatever they split."""
    raw = credential_region(url)
    region = "\n".join({raw, unquote(raw), unquote_plus(raw)}).lower()
    if len(raw) < shortest:
        return text
    low = text.lower()  # drivers may change the case of what they quote
    out, i = [], 0
    while i < len(text):
        end = i + shortest
        if end <= len(text) and low[i:end] in region:
            while end < len(text) and low[i : end + 1] in region:
                end += 1
            out.append("***")
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


_SHORT_SECRET = 8


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``.

    idsync never prints a URL with its password; this is the second line of defence. A short
    password (``"r"``, ``"idsync"``) replaced everywhere would shred every message that happens
    to contain it, so those are replaced only where they stand as a URL's password
    (``:secret@``). Longer secrets go first: one may hold another (candidates of a URL).
    """
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= _SHORT_SECRET:
            text = text.replace(secret, "***")
        elif secret:
            text = text.replace(f":{secret}@", ":***@")
    return text
