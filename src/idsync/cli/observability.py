"""Logging for the CLI: text lines like the original job's, or JSON lines; secrets scrubbed.

Only the CLI calls :func:`configure_logging`; the library just logs to ``logging.getLogger``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from idsync.urls import redact

_EXTRA_KEYS = ("job", "run_id", "event", "counts", "duration_s", "ids")


class _Redacting(logging.Formatter):
    def __init__(self, inner: logging.Formatter, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.inner, self.secrets = inner, secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record), self.secrets)


class TextFormatter(logging.Formatter):
    """``time LEVEL message``; a message of several lines gets the prefix on every line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if "\n" not in text or record.exc_info:
            return text
        first, _, rest = text.partition("\n")
        prefix = first[: len(first) - len(record.message.partition("\n")[0])]
        return first + "\n" + "\n".join(prefix + line for line in rest.split("\n"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, and the run's fields when present."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.__dict__.get("summary") or record.getMessage(),
        }
        for key in _EXTRA_KEYS:
            if key in record.__dict__:
                data[key] = record.__dict__[key]
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes through a large buffer, flushed every ``interval_s``, on warnings and at close.

    A first sync logs one line per inserted id; written one system call each, 200,000 of them
    cost about as much as the inserts. Lines still go out in order, a fraction of a second late.
    """

    def __init__(self, interval_s: float = 0.25) -> None:
        super().__init__(_buffered_stderr())
        self.interval_s = interval_s
        self._flushed = time.monotonic()

    def flush(self) -> None:
        # StreamHandler calls flush() after every record: flush only when it is time.
        now = time.monotonic()
        if now - self._flushed >= self.interval_s:
            self._flushed = now
            self.stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.levelno >= logging.WARNING:
            self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
        super().close()


def _buffered_stderr() -> TextIO:
    raw = io.FileIO(os.dup(2), "w")
    return io.TextIOWrapper(io.BufferedWriter(raw, 1 << 16), encoding="utf-8", errors="replace")


class _ErrorSeen(logging.Filter):
    """Remembers that a run's failure was logged (the ``error`` event), so that the CLI does
    not say it a second time on stderr."""

    seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.__dict__.get("event") == "error":
            self.seen = True
        return True


def error_logged() -> bool:
    """Whether a failure went to idsync's log since :func:`configure_logging`."""
    handlers = logging.getLogger("idsync").handlers
    return any(isinstance(f, _ErrorSeen) and f.seen for h in handlers for f in h.filters)


def configure_logging(
    level: str = "info", fmt: str = "text", secrets: tuple[str, ...] = (), buffered: bool = True
) -> logging.Handler:
    """Send idsync's logs to stderr: buffered, or line by line (under a progress bar)."""
    handler: logging.Handler = BufferedStderrHandler() if buffered else logging.StreamHandler()
    inner = JsonFormatter() if fmt == "json" else TextFormatter()
    handler.setFormatter(_Redacting(inner, secrets))
    handler.addFilter(_ErrorSeen())
    logger = logging.getLogger("idsync")
    for old in logger.handlers:
        old.close()
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    return handler
