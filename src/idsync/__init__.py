"""idsync: keep SQL reference tables of MongoDB ids complete, fast, and provably so.

The library API::

    from idsync import Job, Settings, RunOptions, sync

    settings = Settings(mongo_uri="mongodb://host/maas", mysql_url="mysql://u:p@host/maas")
    report = sync(Job(), settings, RunOptions(dry_run=True))
    print(report.status, report.missing)

Checking and following live in their modules: ``idsync.check.check(job, settings, CheckOptions())``
and ``idsync.watch.watch(job, settings, WatchOptions(), stop_event)``.
"""

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
