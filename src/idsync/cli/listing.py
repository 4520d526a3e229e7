"""`run --list-missing FILE`: the ids a run stores, one per line.

A regular file is written beside its place and renamed into it when the run ends (failed or
not: what a run stored stays stored), so that it never holds half of two runs, and a run that
cannot start leaves the old one alone. A pipe or a device gets the ids as each batch commits;
a named pipe with no reader is refused at once rather than waited on.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from idsync.errors import ConfigError, TerminalError


class MissingFile:
    """Where the ids go; flushed batch by batch, so that a full disk or a closed pipe stops the
    run at once, naming the file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._temporary: Path | None = None
        if path == "-":  # stdout carries the report
            raise ConfigError("--list-missing -: give a file (a named pipe works too)")
        try:
            self.out = self._open(Path(path))
        except OSError as exc:
            raise ConfigError(f"--list-missing {path}: {exc.strerror or exc}") from None

    def _open(self, path: Path) -> TextIO:
        mode = path.stat().st_mode if path.exists() else stat.S_IFREG
        if stat.S_ISFIFO(mode):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    raise ConfigError(f"--list-missing {path}: a named pipe no one reads") from None
                raise
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            return os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        if not stat.S_ISREG(mode):  # /dev/null, /dev/stdout, a terminal: written as they are
            return open(path, "w", encoding="utf-8", newline="\n")
        if not path.parent.is_dir():
            raise ConfigError(f"--list-missing {path}: no directory {path.parent}")
        self._temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        return open(self._temporary, "w", encoding="utf-8", newline="\n")

    def begin(self) -> None:
        """A dry run's retried pass lists again what the failed one listed. A pipe cannot take
        it back: there an id may come twice after a retry."""
        if self._temporary is not None:
            self._do(lambda: (self.out.seek(0), self.out.truncate()))

    def add(self, texts: list[str]) -> None:
        self._do(lambda: (self.out.writelines(f"{text}\n" for text in texts), self.out.flush()))

    def close(self) -> None:
        """Close; a regular file takes its place now."""
        with contextlib.suppress(OSError):  # each batch was flushed: nothing is left to lose
            self.out.close()
        if self._temporary is not None:
            temporary = self._temporary
            self._do(lambda: os.replace(temporary, self.path))

    def _do(self, step: Callable[[], object]) -> None:
        try:
            step()
        except OSError as exc:
            raise TerminalError(f"--list-missing {self.path}: {exc.strerror or exc}") from None
