"""Choices for `idsync watch`: how to follow the source, how often to reconcile, where to report.

Frozen and validated on construction, like the job and the settings: a bad value is a
:class:`~idsync.errors.ConfigError` before any server is contacted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from enum import StrEnum

from idsync.errors import ConfigError

# The longest duration any option takes. Beyond it a window reaches before ObjectIds' epoch and
# waits overflow the platform's timers: a year is more than any of them needs.
MAX_DURATION_S = 366 * 86400.0
_ADDRESS = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]*)):(?P<port>\d{1,5})"
)


class WatchMode(StrEnum):
    """How new ids are found."""

    AUTO = "auto"
    """Change streams where the server has them, polling elsewhere."""
    CHANGE_STREAM = "change-stream"
    """Insert events from a change stream (replica sets, sharded clusters); refuse otherwise."""
    POLL = "poll"
    """Ask for ObjectIds newer than the last seen, every ``poll_interval_s``."""


@dataclass(frozen=True)
class WatchOptions:
    """How a watcher follows its job's source."""

    mode: WatchMode = WatchMode.AUTO
    """Change streams, polling, or whichever the server allows."""
    poll_interval_s: float = 1.0
    """Pause between the starts of two polls."""
    poll_window_s: float = 60.0
    """How far before the last poll a new poll looks again: ObjectIds carry the writing
    client's clock, and a document may become visible a while after its id was made."""
    reconcile_every_s: float = 3600.0
    """A full pass (as `idsync run`) this often, catching whatever following could not see."""
    initial_pass: bool = True
    """Start with a full pass. Without it, a watcher with a checkpoint resumes from it alone,
    and one without starts from now; the periodic full pass still runs."""
    max_batch_wait_s: float = 0.2
    """Longest an id waits for its batch to fill before the batch is written anyway."""
    checkpoint_every_s: float = 10.0
    """How often a position that advanced with nothing to insert (an idle change stream, an
    empty poll) is saved, so a restart does not go back further than this."""
    backoff_min_s: float = 0.5
    """First pause before reconnecting after a failure; it doubles with each failure in a row."""
    backoff_max_s: float = 30.0
    """Longest pause between reconnection attempts."""
    stuck_after_s: float = 60.0
    """`/healthz` answers 503 when the watcher has made no progress for this long."""
    http: str | None = None
    """``HOST:PORT`` for `/healthz` and `/metrics`; None serves nothing."""

    def __post_init__(self) -> None:
        if not isinstance(self.mode, WatchMode):
            raise ConfigError(f"unknown watch mode {self.mode!r}")
        self._check_durations()
        for name in ("poll_interval_s", "max_batch_wait_s", "backoff_min_s", "stuck_after_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive")
        if self.poll_window_s < 0 or self.checkpoint_every_s < 0:
            raise ConfigError("poll_window_s and checkpoint_every_s must not be negative")
        if self.reconcile_every_s < 1:
            raise ConfigError("reconcile_every_s must be at least 1 second")
        if self.backoff_max_s < self.backoff_min_s:
            raise ConfigError("backoff_max_s must not be below backoff_min_s")
        if self.stuck_after_s <= self.poll_interval_s:
            raise ConfigError("stuck_after_s must exceed poll_interval_s")
        if self.http is not None:
            parse_address(self.http)

    def _check_durations(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name.endswith("_s") and not (
                isinstance(value, int | float) and math.isfinite(value) and value <= MAX_DURATION_S
            ):
                raise ConfigError(
                    f"{item.name} must be a number of seconds up to {MAX_DURATION_S:g} (a year),"
                    f" not {value!r}"
                )

    @property
    def http_address(self) -> tuple[str, int] | None:
        return parse_address(self.http) if self.http is not None else None


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; an empty host means every interface)."""
    match = _ADDRESS.fullmatch(text.strip())
    port = int(match["port"]) if match else -1
    if not match or not 0 <= port <= 65535:
        raise ConfigError(f"invalid address {text!r}: use HOST:PORT, e.g. 127.0.0.1:9464")
    return match["ipv6"] or match["host"] or "0.0.0.0", port  # noqa: S104 (asked for by ":PORT")
