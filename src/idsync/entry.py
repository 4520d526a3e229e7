"""The `idsync` command's first lines: a signal is held from the start, before the imports.

Importing the command's modules takes a tenth of a second; a SIGTERM meanwhile would end the
process with no word, a Ctrl-C with a traceback. Held here, it is said once the command can
(`idsync.cli.main`): the one failed report, exit 1.
"""

from __future__ import annotations

import signal

held: list[int] = []
"""Signals that came before the command could take them."""


def _hold(signum: int, _frame: object) -> None:
    held.append(signum)


def hold_signals() -> None:
    """Hold SIGTERM and SIGINT (unless the parent made us ignore them)."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _hold)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _hold)


def holding(handler: object) -> bool:
    """Whether ``handler`` is the one :func:`hold_signals` set."""
    return handler is _hold


def main() -> None:
    """Console-script entry point."""
    hold_signals()
    from idsync.cli import main as command  # noqa: PLC0415 (after the signals are held)

    command()
