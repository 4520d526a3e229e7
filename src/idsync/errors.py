"""One root error, split by what the caller should do about it.

Every error idsync raises on purpose is an :class:`IdsyncError`. Its subclass says whether trying
again can help (:class:`TransientError`), whether it cannot (:class:`TerminalError`), whether the
input was wrong (:class:`ConfigError`) or whether a safety guard refused to go on
(:class:`GuardError`). The CLI maps each to an exit code; a library caller can do the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from idsync.envelope import BaseReport


class IdsyncError(Exception):
    """Root of every error idsync raises on purpose. ``str(err)`` is one line for a human."""

    exit_code = 1
    report: BaseReport | None = None
    """The report of the run or check it ended, with the figures so far (set by the envelope)."""


class ConfigError(IdsyncError):
    """The job, the settings or the command line are wrong; nothing was read or written."""

    exit_code = 2


class TerminalError(IdsyncError):
    """A server refused in a way retrying will not fix (missing table, no privilege, bad data)."""

    exit_code = 1


class TransientError(IdsyncError):
    """A server was unreachable, timed out or dropped the connection; a later run may succeed."""

    exit_code = 1


class GuardError(IdsyncError):
    """A safety guard refused to go on (empty source, lock held elsewhere, too many inserts)."""

    exit_code = 3


class LockHeldError(GuardError):
    """Another run holds the job's lock on the target and did not release it in time."""


class InterruptedRun(IdsyncError):
    """The run was stopped by a signal after committing (or rolling back) its current batch."""

    exit_code = 1


class UnexpectedError(TerminalError):
    """An exception idsync did not foresee (a bug, a driver error of an unknown kind): the run
    stopped and is reported as failed, naming the exception's type. Terminal: nothing says
    that trying again would go differently."""


def as_idsync_error(exc: BaseException) -> IdsyncError:
    """What a report records for ``exc``: itself when idsync raised it on purpose, an
    :class:`InterruptedRun` for Ctrl-C (or an exit asked for), else an :class:`UnexpectedError`
    naming the exception's type. Never success: a run is ``ok`` only when it finished."""
    if isinstance(exc, IdsyncError):
        return exc
    name = type(exc).__name__
    if not isinstance(exc, Exception):  # Ctrl-C, or a signal the caller turned into one
        why = str(exc) or name
        return InterruptedRun(f"interrupted ({why}) before the end; run again to finish")
    return UnexpectedError(f"unexpected {name}: {exc}" if str(exc) else f"unexpected {name}")
