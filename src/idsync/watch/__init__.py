"""`watch`: a full pass, then every new id as it comes, with health and a checkpoint.

:mod:`watcher` runs it; :mod:`core` is one life of the follow loop; :mod:`follow` reads the
changes; :mod:`sink` commits them with their checkpoint; :mod:`health` answers the probes;
:mod:`options` is what it was asked.
"""

from idsync.watch.options import WatchOptions
from idsync.watch.watcher import WatchSummary, watch

__all__ = ["WatchOptions", "WatchSummary", "watch"]
