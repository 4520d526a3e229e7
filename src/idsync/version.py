"""The package version, in a module of its own so that any layer may read it."""

from importlib import metadata

__version__ = "0.1.0"


DRIVERS = ("pymongo", "mysqlclient", "psycopg")


def versions() -> str:
    """The drivers idsync was installed with, one per line, from their installed metadata: no
    driver is imported to say which it is."""
    found = []
    for name in DRIVERS:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return "\n".join(found)
