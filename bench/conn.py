"""Connections for the benchmark's own processes: small, so the baseline and the floor import only
the two drivers that idsync itself uses (pymongo, mysqlclient) and nothing of idsync."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import MySQLdb


@dataclass(frozen=True)
class MySQLAddress:
    """``mysql://user:password@host:port/database`` taken apart."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, url: str) -> MySQLAddress:
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")),
        )


def mysql_connect(url: str, *, autocommit: bool = False, database: bool = True) -> Any:
    """A mysqlclient connection to the URL's server (and database, unless ``database=False``)."""
    addr = MySQLAddress.parse(url)
    extra = {"database": addr.database} if database else {}
    return MySQLdb.connect(
        host=addr.host,
        port=addr.port,
        user=addr.user,
        password=addr.password,
        charset="utf8mb4",
        autocommit=autocommit,
        **extra,
    )


def with_path(url: str, database: str) -> str:
    """``url`` (MongoDB URI or MySQL URL) naming ``database`` in its path instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


def mongo_database(uri: str) -> str:
    """The database a MongoDB URI names in its path."""
    return unquote(urlsplit(uri).path.lstrip("/"))
