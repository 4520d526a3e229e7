"""Waiting for a MySQL named lock (`GET_LOCK`) in short slices, so that a signal ends the wait.

One `GET_LOCK(name, 30)` would block its thread for the whole time: a SIGTERM would be seen only
when it returns. Asked again every slice, the wait stops within one slice of ``stop`` being set.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from idsync.errors import InterruptedRun

SLICE_S = 0.25
log = logging.getLogger("idsync")


def held_by(holder: str | None) -> str:
    """The start of a refusal's parenthesis: who holds the lock, when the server said."""
    return f"held by {holder}; " if holder else ""


def wait_for_lock(
    get_lock: Callable[[float], object],
    timeout_s: float,
    stop: threading.Event | None,
    what: str,
    holder: Callable[[], str | None] = lambda: None,
    *,
    job: str,
) -> bool | None:
    """Call ``get_lock(seconds)`` (the value of ``GET_LOCK(name, seconds)``) until it is 1, for
    up to ``timeout_s``: True once held, False when the time is up, None when the server answers
    NULL (the wait was killed or failed: not a held lock); :class:`~idsync.errors.InterruptedRun`
    as soon as ``stop`` is set. ``holder()`` names who holds it, for the message said at once
    when the wait begins."""
    deadline, said = time.monotonic() + timeout_s, False
    while True:
        got = get_lock(max(0.0, min(SLICE_S, deadline - time.monotonic())))
        if got == 1:
            return True
        if not said and got == 0 and timeout_s > 0:  # at once, not after a silent wait
            by = holder() or "another run or watcher"
            log.info(
                "[%s] waiting up to %g s for %s, held by %s", job, timeout_s, what, by,
                extra={"job": job, "event": "lock_wait"},
            )  # fmt: skip
            said = True
        if stop is not None and stop.is_set():
            raise InterruptedRun(f"interrupted while waiting for {what}: nothing written")
        if got is None:
            return None
        if time.monotonic() >= deadline:
            return False
