"""idsync: keep SQL reference tables of MongoDB ids complete, fast, and provably so.

The library API::

    from idsync import Job, Settings, RunOptions, sync

    settings = Settings(mongo_uri="mongodb://host/maas", mysql_url="mysql://u:p@host/maas")
    report = sync(Job(), settings, RunOptions(dry_run=True))
    print(report.status, report.missing)

Checking and following live in their modules: ``idsync.check.check(job, settings, CheckOptions())``
and ``idsync.watch.watch(job, settings, WatchOptions(), stop_event)``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from idsync.check.report import CheckReport
    from idsync.config import BUILTIN_JOB, Job, RunOptions, Settings
    from idsync.errors import (
        ConfigError,
        GuardError,
        IdsyncError,
        InterruptedRun,
        LockHeldError,
        TerminalError,
        TransientError,
    )
    from idsync.mongo.source import ScanOrder
    from idsync.run.report import Rejected, Status, SyncReport
    from idsync.run.sync import Progress, sync
    from idsync.version import __version__
    from idsync.watch.options import WatchOptions

# Where each public name lives, imported on first use: `idsync --version` or a config check
# should not load the MongoDB driver, nor a caller of `idsync.Job` the watcher.
_HOMES = {
    "CheckReport": "idsync.check.report", "BUILTIN_JOB": "idsync.config", "Job": "idsync.config",
    "RunOptions": "idsync.config", "Settings": "idsync.config", "ConfigError": "idsync.errors",
    "GuardError": "idsync.errors", "IdsyncError": "idsync.errors",
    "InterruptedRun": "idsync.errors", "LockHeldError": "idsync.errors",
    "TerminalError": "idsync.errors", "TransientError": "idsync.errors",
    "ScanOrder": "idsync.mongo.source", "Rejected": "idsync.run.report",
    "Status": "idsync.run.report", "SyncReport": "idsync.run.report",
    "Progress": "idsync.run.sync", "sync": "idsync.run.sync", "__version__": "idsync.version",
    "WatchOptions": "idsync.watch.options",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'idsync' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


__all__ = [
    "BUILTIN_JOB",
    "CheckReport",
    "ConfigError",
    "GuardError",
    "IdsyncError",
    "InterruptedRun",
    "Job",
    "LockHeldError",
    "Progress",
    "Rejected",
    "RunOptions",
    "ScanOrder",
    "Settings",
    "Status",
    "SyncReport",
    "TerminalError",
    "TransientError",
    "WatchOptions",
    "__version__",
    "sync",
]
