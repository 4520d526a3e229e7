"""The import arrows of docs/architecture.md, checked on the source: a new arrow that breaks the
layering fails here, not in a review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
SHARED = {
    "checks", "config", "deleting", "diff", "envelope", "errors", "export", "ids", "ledger",
    "locks", "mirroring", "merge", "metrics", "plan",
    "retry", "runs", "session", "spans", "sqltext", "target", "urls", "version",
}  # fmt: skip
FACTORY = {"targets"}
"""Names the server package that serves a URL: the one module above the server packages that
imports them besides the features, which get their target from it."""
ADAPTERS = {"mongo", "mysql", "postgres"}
FEATURES = {"run", "check", "watch", "doctor", "work"}
DRIVERS = {"pymongo": "mongo", "bson": "mongo", "MySQLdb": "mysql", "psycopg": "postgres"}
ALLOWED = {("watch", "run")}
"""The one arrow between features: a watcher's full pass is a run (`idsync run`, exactly)."""


def _part(module: str) -> str:
    """The layer part of a module name: `idsync.mysql.target` -> `mysql`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports() -> list[tuple[str, str]]:
    """(importing module, imported module) for every import in the package, lazy ones too."""
    found = []
    for path in sorted((SRC / "idsync").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(module, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "idsync":
                    found += [(module, f"idsync.{alias.name}") for alias in node.names]
                else:
                    found.append((module, node.module))
    return found


IMPORTS = _imports()


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_each_driver_is_imported_only_in_its_server_package(driver: str) -> None:
    wrong = [
        (importer, imported)
        for importer, imported in IMPORTS
        if imported.split(".")[0] == driver and _part(importer) != DRIVERS[driver]
    ]
    assert wrong == []


def _arrows() -> list[tuple[str, str]]:
    return [
        (_part(importer), _part(imported))
        for importer, imported in IMPORTS
        if imported.startswith("idsync.") and _part(importer) != _part(imported)
    ]


def test_server_packages_do_not_import_each_other_or_anything_above() -> None:
    wrong = [(a, b) for a, b in _arrows() if a in ADAPTERS and b not in SHARED]
    wrong += [(a, b) for a, b in _arrows() if a in FACTORY and b not in SHARED | ADAPTERS]
    assert wrong == []


def test_features_do_not_import_each_other_or_the_cli() -> None:
    wrong = [
        (a, b)
        for a, b in _arrows()
        if a in FEATURES and b not in SHARED | ADAPTERS | FACTORY and (a, b) not in ALLOWED
    ]
    assert wrong == []


def test_shared_modules_import_only_shared_ones() -> None:
    wrong = [(a, b) for a, b in _arrows() if a in SHARED and b not in SHARED]
    assert wrong == []


def test_every_public_name_resolves() -> None:
    """The package's names are imported on first use: each must be where it is said to be."""
    import idsync

    for name in idsync.__all__:
        assert getattr(idsync, name) is not None, name
