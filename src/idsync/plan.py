"""How a run (or an exact check) compares the sides: the target's ids as a set, or both sides
merged in order.

A set is the fastest (one pass over each side, C-level set operations) and holds every target
id in memory: about 170 bytes each, measured (`bench/results/`). A merge holds one batch of each
side whatever their sizes, and needs both in one order: the source's ObjectIds by the `_id`
index, the target's column by a UNIQUE index under a collation that compares and orders hex
text as bytes. Anything else could give a wrong answer, so it is never merged.
"""

from __future__ import annotations

from collections.abc import Callable

from idsync.config import Job, Settings
from idsync.errors import ConfigError
from idsync.target import Column, Target

BASE_MIB = 50
"""A run's memory before it holds any id (interpreter, drivers, buffers), measured."""
SET_BYTES_PER_ID = 200
"""What one target id costs in the set plan (170 bytes measured, and a margin)."""


def why_not_merge(job: Job, target: Target, column: Column) -> str | None:
    """Why the sides cannot be merged in order; None when they can."""
    where = f"{job.table}.{job.column}"
    refusals = (
        (job.field != "_id", f"the field {job.field} is not _id (only _id is read in index order)"),
        (not column.unique, f"{where} has no UNIQUE index to read it in order by"),
        (not column.ordered, f"the UNIQUE index on {where} is not a B-tree in the column's own"
            " order (a hash, another collation or operator class): it cannot be read in order"),
        (bool(column.fit.trailing_spaces), f"{where}: {column.fit.trailing_spaces}"),
        (not column.exact, f"collation {column.collation} does not compare texts byte for byte"),
    )  # fmt: skip
    for refused, why in refusals:
        if refused:
            return why
    if not target.sorts_hex_as_bytes(column):
        return f"collation {column.collation} does not order hex text as its bytes"
    return None


def choose(
    settings: Settings, job: Job, target: Target, column: Column, estimate: int | None
) -> tuple[str, str]:
    """The plan ("set" or "merge") and why, for ``estimate`` ids (None: unknown)."""
    if settings.plan == "set":
        return "set", "asked for"
    refused = why_not_merge(job, target, column)
    if settings.plan == "merge":
        if refused:
            raise ConfigError(f"plan merge: {refused}; plan set (or auto) reads it as a set")
        return "merge", "asked for"
    budget = settings.memory_budget_mb
    if estimate is None:
        return "set", "no estimate of the ids: read as a set"
    needed = BASE_MIB + estimate * SET_BYTES_PER_ID / 2**20
    if needed <= budget:
        return "set", f"about {estimate:,} ids fit {budget} MiB as a set"
    if refused:
        return "set", f"about {estimate:,} ids need about {needed:,.0f} MiB as a set, over" \
            f" {budget} MiB, but no merge: {refused}"  # fmt: skip
    return "merge", f"about {estimate:,} ids would need about {needed:,.0f} MiB as a set"


def why_not_ranges(
    settings: Settings, job: Job, target: Target, column: Column, *, flavour: str,
    reads_by_index: Callable[[], bool],
) -> str | None:  # fmt: skip
    """Why `--workers` cannot compare the sides range by range; None when they can. A range is
    read in `_id` order on both sides, as a merge is; and where the source reads no range by
    its index (``reads_by_index``), each worker would scan the whole collection: measured slower
    than one pass (`bench/results/workers.md`), unless ``range_reads`` is "always"."""
    refused = why_not_merge(job, target, column)
    if refused is not None:
        return f"ranges are compared in `_id` order, and {refused}"
    if settings.range_reads == "auto" and not reads_by_index():
        return (
            f"the source ({flavour}) does not read an `_id` range by its index: each worker"
            " would scan the whole collection"
        )
    return None
