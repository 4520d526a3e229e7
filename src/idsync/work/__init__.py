"""`idsync work`: rounds of `_id` ranges in a ledger, worked by any number of processes."""

from idsync.work.report import WorkReport
from idsync.work.worker import WorkOptions, work

__all__ = ["WorkOptions", "WorkReport", "work"]
