"""`check`: prove that the target holds every source id, reading only where the two differ.

:mod:`checker` runs one check; :mod:`buckets` compares per hex prefix (pure); :mod:`sides`
gives each server's side; :mod:`tally` counts what differs; :mod:`report` is its report.
"""

from idsync.check.checker import CheckOptions, check
from idsync.check.report import CheckReport

__all__ = ["CheckOptions", "CheckReport", "check"]
