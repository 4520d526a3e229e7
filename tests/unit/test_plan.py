"""Which plan a run takes, from the settings, the column and the estimated size."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest

from idsync.config import Job, Settings
from idsync.errors import ConfigError
from idsync.ids import ColumnFit
from idsync.plan import choose
from idsync.target import Column, Target

EXACT = Column(
    "varchar", ColumnFit(24, None, "utf8mb4"), "utf8mb4_nopad_bin", unique=True, ordered=True
)


class _Orders:
    def __init__(self, as_bytes: bool) -> None:
        self.as_bytes = as_bytes

    def sorts_hex_as_bytes(self, column: Column) -> bool:
        return self.as_bytes


def _plan(estimate: int | None, column: Column = EXACT, as_bytes: bool = True, **kw: Any) -> str:
    settings = Settings(mongo_uri="mongodb://h/db", mysql_url="mysql://u:p@h/db", **kw)
    target = cast(Target, _Orders(as_bytes))
    return choose(settings, Job(), target, column, estimate)[0]


def test_auto_merges_only_what_would_not_fit_the_budget() -> None:
    assert _plan(100_000) == "set"
    assert _plan(2_000_000) == "merge"
    assert _plan(2_000_000, memory_budget_mb=1024) == "set"
    assert _plan(None) == "set"


def test_auto_never_merges_a_column_out_of_byte_order() -> None:
    loose = replace(EXACT, collation="utf8mb4_general_ci")
    assert _plan(10**9, column=loose) == "set"
    assert _plan(10**9, as_bytes=False) == "set"
    assert _plan(10**9, column=replace(EXACT, unique=False)) == "set"
    assert _plan(10**9, column=replace(EXACT, ordered=False)) == "set"  # a hash, say
    padded = replace(EXACT, fit=ColumnFit(24, None, "utf8mb4", "a CHAR column drops …"))
    assert _plan(10**9, column=padded) == "set"


def test_asked_for_plans() -> None:
    assert _plan(10**9, plan="set") == "set"
    assert _plan(10, plan="merge") == "merge"
    with pytest.raises(ConfigError, match="does not order hex text"):
        _plan(10, as_bytes=False, plan="merge")


def test_a_plan_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ConfigError, match="plan must be one of auto, set, merge"):
        _plan(10, plan="fast")
