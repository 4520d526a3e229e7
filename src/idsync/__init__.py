"""idsync: keep SQL reference tables of MongoDB ids complete, fast, and provably so.

The library API::

    from idsync import Job, Settings, RunOptions, sync

    settings = Settings(mongo_uri="mongodb://host/maas", mysql_url="mysql://u:p@host/maas")
    report = sync(Job(), settings, RunOptions(dry_run=True))
    print(report.status, report.missing)
"""

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
from idsync.report import Rejected, Status, SyncReport
from idsync.source import ScanOrder
from idsync.sync import Progress, sync

__version__ = "0.1.0"

__all__ = [
    "BUILTIN_JOB",
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
    "__version__",
    "sync",
]
