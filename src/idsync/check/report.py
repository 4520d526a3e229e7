"""CheckReport: what a check found, as a typed object, a JSON object or a short text summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from idsync.envelope import MAX_SAMPLES, BaseReport, Status
from idsync.errors import IdsyncError
from idsync.ids import shown_text

CheckStatus = Status
"""A check ends ``ok``, ``drift`` or ``failed`` (the name is kept for its callers)."""


class Method(StrEnum):
    """How one side was compared."""

    BUCKETS = "buckets"
    """Summarised per range of ObjectIds on the server (count and checksums of the texts); ids
    read only where the summaries differ."""
    EXACT = "exact"
    """Every id read and compared."""


@dataclass
class SideMethod:
    """How one side was compared, and why it was not by buckets when it was not."""

    method: Method = Method.EXACT
    reason: str | None = None


@dataclass
class CheckReport(BaseReport):
    """Figures of one check of one job. Counts are of distinct ids unless said otherwise."""

    exact: bool = False
    """Every id was asked to be compared (``--exact`` or ``check_exact``)."""
    source_ids: int = 0
    """Ids in the source (counted on the server or read)."""
    target_ids: int = 0
    """Rows with a value in the target column (counted on the server or read)."""
    missing: int = 0
    """Source ids that the target lacks and could store: what `idsync run` would insert."""
    missing_samples: list[str] = field(default_factory=list)
    orphans: int = 0
    """Target values no source id has: reported only, never deleted."""
    orphan_samples: list[str] = field(default_factory=list)
    duplicate_rows: int = 0
    """Target rows repeating a value of another row, where rows were read (no UNIQUE index)."""
    proof: str = ""
    plan: str | None = None
    """How an exact comparison ran: "set" (the target's ids in memory), "merge" (both sides
    in `_id` order, a batch in memory) or "ranges" (`_id` ranges by ``workers`` threads, each in
    order); None when ranges were compared by checksums."""
    plan_reason: str | None = None
    workers: int = 1
    """Threads that compared `_id` ranges (plan "ranges"), else 1."""
    workers_reason: str | None = None
    """Why a check asked for more workers compared in one thread; None otherwise."""
    method: dict[str, SideMethod] = field(
        default_factory=lambda: {"source": SideMethod(), "target": SideMethod()}
    )
    """Per side: ``buckets`` or ``exact``, with the reason for taking the exact way."""
    bucket_prefix: int | None = None
    """Hex characters of the id that name a top-level bucket (8 and less: a time range)."""
    buckets_compared: int = 0
    """Top-level buckets whose counts were compared."""
    buckets_differing: int = 0
    """Top-level buckets whose counts differed."""
    buckets_split: int = 0
    """Differing buckets counted again in 16 smaller ones."""
    buckets_read: int = 0
    """Buckets whose ids were read from both sides and compared one by one."""
    ids_read_source: int = 0
    """Ids read from MongoDB (counts are not ids)."""
    ids_read_target: int = 0
    """Values read from MySQL (counts are not ids)."""
    bytes_read: dict[str, int | None] = field(
        default_factory=lambda: {"mongodb": None, "mysql": None}
    )
    """Bytes received: from MongoDB, the BSON of every reply batch the check read; from MySQL,
    the server's own count for the check's session (``Bytes_sent``). None: not measured."""
    count_seconds: dict[str, float] = field(default_factory=lambda: {"mongodb": 0.0, "mysql": 0.0})
    """Time each server took to count per bucket (the rest of ``duration_s`` is reading)."""

    KEYS: ClassVar[tuple[str, ...]] = (
        "job", "exact", "status", "exit_code", "run_id", "started_at", "duration_s", "phases",
        "source_ids",
        "target_ids", "missing", "missing_samples", "orphans", "orphan_samples", "rejected",
        "rejected_samples", "duplicate_rows", "proof", "plan", "plan_reason", "workers",
        "workers_reason", "method",
        "bucket_prefix",
        "buckets_compared", "buckets_differing", "buckets_split", "buckets_read",
        "ids_read_source", "ids_read_target", "bytes_read", "count_seconds", "attempts",
        "retried", "source", "target", "warnings", "error",
    )  # fmt: skip

    def start_attempt(self) -> None:
        """Forget what a failed attempt found."""
        super().start_attempt()
        keep = {"job", "exact", "run_id", "started_at", "attempts", "retried", "phases", "_clock"}
        fresh = CheckReport(job=self.job)
        for name, value in vars(fresh).items():
            if name not in keep:
                setattr(self, name, value)

    def add_missing(self, text: str) -> None:
        self.missing += 1
        if len(self.missing_samples) < MAX_SAMPLES:
            self.missing_samples.append(text)

    def add_orphan(self, text: str) -> None:
        self.orphans += 1
        if len(self.orphan_samples) < MAX_SAMPLES:
            self.orphan_samples.append(shown_text(text))

    def fail(self, exc: IdsyncError) -> None:
        super().fail(exc)
        self.status = Status.FAILED  # a check writes nothing: no guard refuses it

    def outcome(self) -> Status:
        # A duplicated row is drift too: the table does not hold each id exactly once.
        drift = self.missing or self.orphans or self.rejected or self.duplicate_rows
        return Status.DRIFT if drift else Status.OK

    def end_line(self) -> tuple[str, dict[str, int]]:
        return (
            f"{self.missing} missing, {self.orphans} orphans, {self.rejected} rejected,"
            f" {self.duration_s:.2f} s"
        ), {}

    @property
    def in_sync(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["method"] = {
            side: {"method": str(m.method), "reason": m.reason} for side, m in self.method.items()
        }
        if self.status is not Status.OK:
            data["proof"] = ""  # what an ok would have proved: a drift or a failure proves not
        return data

    def to_text(self) -> str:
        src, tgt = self.source, self.target
        lines = [
            f"{self.job}: {self.status}{' (exact)' if self.exact else ''}"
            f"{f' ({self.plan} plan)' if self.plan else ''}",
            f"  source  {src.get('address', '?')}/{src.get('database', '?')}"
            f" {src.get('collection', '?')}.{src.get('field', '?')}"
            f" ({src.get('flavour', '?')}): {self.source_ids:,} ids, {self._how('source')}",
            f"  target  {tgt.get('address', '?')}/{tgt.get('database', '?')}"
            f" {tgt.get('table', '?')}.{tgt.get('column', '?')}: {self.target_ids:,} rows,"
            f" {self._how('target')}",
        ]
        if self.bucket_prefix is not None:
            lines.append(
                f"  buckets {self.buckets_compared:,} compared ({self.bucket_prefix} hex chars)"
                f" · {self.buckets_differing:,} differing · {self.buckets_split:,} split"
                f" · {self.buckets_read:,} read"
            )
        lines.append(
            f"  missing {self.missing:,} · orphans {self.orphans:,} · rejected {self.rejected:,}"
            f"{f' · duplicate rows {self.duplicate_rows:,}' if self.duplicate_rows else ''}"
            f" · read {self.ids_read_source:,} + {self.ids_read_target:,} ids"
            f" · {self.duration_s:.2f} s"
        )
        lines += [f"  missing {text}" for text in self.missing_samples[:5]]
        lines += [f"  orphan  {text}" for text in self.orphan_samples[:5]]
        lines += [f"  rejected {r.id!r}: {r.reason}" for r in self.rejected_samples[:5]]
        if max(self.missing, self.orphans, self.rejected) > 5:
            lines.append("  … more in the samples of --json")
        if self.status is Status.OK and self.proof:
            lines.append(f"  proven: {self.proof}")
        return "\n".join(lines + self.tail_lines())

    def _how(self, side: str) -> str:
        """The method, with the first clause of its reason: the whole one is in --json."""
        chosen = self.method[side]
        if not chosen.reason:
            return str(chosen.method)
        short = chosen.reason.split(":")[0].split(";")[0]
        return f"{chosen.method} ({short}{'…' if short != chosen.reason else ''})"
