"""Checks of configuration values: types as declared, ranges, durations. Nothing converted."""

from __future__ import annotations

import math
import re
from dataclasses import fields

from idsync.errors import ConfigError


class BadValue(ConfigError):
    """A setting or job key with a value of the wrong type or out of range; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


# What each declared field type accepts. A bool is not an int here (Python says it is), and
# nothing is converted: `check_exact = "no"` must not read as true.
_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "a string"),
    "str | None": ((str, type(None)), "a string"),
    "int": ((int,), "an integer"),
    "int | None": ((int, type(None)), "an integer"),
    "float": ((int, float), "a number"),
    "float | None": ((int, float, type(None)), "a number"),
    "bool": ((bool,), "true or false"),
    "bool | None": ((bool, type(None)), "true or false"),
}
_NAMES = {bool: "a boolean", int: "an integer", float: "a number with a fraction", str: "a string",
          list: "an array", dict: "a table", type(None): "nothing"}  # fmt: skip


def check_type(key: str, value: object, declared: str) -> None:
    """Raise :class:`BadValue` naming ``key`` unless ``value`` is of the ``declared`` type."""
    allowed, words = _KINDS[declared]
    if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
        found = _NAMES.get(type(value), type(value).__name__)
        raise BadValue(key, f"{key} must be {words}, not {found}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValue(key, f"{key} must be a finite number, not {value}")


def check_types(obj: object) -> None:
    """Check each field of a dataclass against its declared type."""
    for item in fields(obj):  # type: ignore[arg-type]
        check_type(item.name, getattr(obj, item.name), str(item.type))


def between(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise BadValue(key, f"{key} must be from {low:g} to {high:g}, not {value:g}")


_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"30m"``, ``"1h"``, ``"1.5h"``, ``"1d"``, ``"200ms"``:
    the one reading of a duration for every option that takes one."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ConfigError(f"invalid duration {text!r}: use e.g. 90, 90s, 30m, 1h")
    return float(match["number"]) * _UNITS[match["unit"] or "s"]
