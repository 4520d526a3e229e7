"""SyncReport: what a run did, as a typed object, a JSON object or a short text summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from idsync.envelope import EXIT_CODES, MAX_SAMPLES, BaseReport, Rejected, Status
from idsync.ids import shown_text

__all__ = ["EXIT_CODES", "Rejected", "Status", "SyncReport"]


PHASES = (
    "connect_s", "lock_wait_s", "target_read_s", "source_wait_s", "diff_s", "insert_s", "delete_s",
)  # fmt: skip
"""A run's phases, each in every report (0 when it took no time), in this order."""


@dataclass
class SyncReport(BaseReport):
    """Figures of one run of one job. Counts are of distinct ids unless said otherwise."""

    phases: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    dry_run: bool = False
    source_ids: int = 0
    """Values read from the source (one per document for `_id`)."""
    target_ids_before: int = 0
    """Distinct non-null values in the target column when the run started."""
    present: int = 0
    """Source ids already in the target."""
    missing: int = 0
    """Source ids not in the target that can be stored: what a run inserts."""
    missing_samples: list[str] = field(default_factory=list)
    """The first of them stored (a dry run's answer to "what would be inserted")."""
    inserted: int = 0
    """Rows this run added."""
    restored: int = 0
    """Missing ids whose row was there, marked as an orphan's (soft delete): the mark cleared."""
    concurrent: int = 0
    """Missing ids that another writer stored while this run was inserting."""
    orphans: int = 0
    """Target ids with no source id: reported, and deleted only in mirror mode."""
    orphan_samples: list[str] = field(default_factory=list)
    mirror: bool = False
    """Whether the run deletes orphans (``delete_orphans``)."""
    orphan_action: str = "delete"
    """How: ``delete`` their rows, or ``mark:<column>`` them (the job's ``orphan_action``)."""
    deleted: int = 0
    """Orphans whose rows this run deleted, or marked (a dry run: would, re-verified)."""
    deleted_rows: int = 0
    """Rows deleted: more than ``deleted`` where a column without a UNIQUE index held a text
    twice."""
    deleted_samples: list[str] = field(default_factory=list)
    kept_live: int = 0
    """Orphans the source had again when re-verified just before their delete: kept."""
    kept_referenced: int = 0
    """Orphans kept because a foreign key refused their delete (RESTRICT, NO ACTION)."""
    kept_referenced_samples: list[Rejected] = field(default_factory=list)
    delete_refused: int = 0
    """Orphans a guard refused to delete (--max-deletes, a cascading foreign key)."""
    batches: int = 0
    plan: str | None = None
    """How the sides were compared: "set" (the target's ids in memory), "merge" (both in `_id`
    order, a batch in memory) or "ranges" (`_id` ranges by ``workers`` threads, each merged a
    batch at a time); why, in ``plan_reason``."""
    plan_reason: str | None = None
    workers: int = 1
    """Threads that worked the run: ``settings.workers`` when its plan is "ranges", else 1."""
    workers_reason: str | None = None
    """Why a run asked for more workers was one pass (the source or the table cannot serve
    ranges); None otherwise."""
    bound_by: str | None = None
    """The side the run waited for most: "source" (reading MongoDB) or "target" (reading and
    inserting into the SQL table); None before the ids were streamed."""

    KEYS: ClassVar[tuple[str, ...]] = (
        "job", "dry_run", "status", "run_id", "started_at", "duration_s", "phases", "bound_by",
        "plan", "plan_reason", "workers", "workers_reason",
        "source_ids", "target_ids_before", "present", "missing", "missing_samples", "inserted",
        "restored", "concurrent", "rejected", "rejected_samples", "orphans", "orphan_samples",
        "mirror", "orphan_action", "deleted", "deleted_rows", "deleted_samples", "kept_live",
        "kept_referenced", "kept_referenced_samples", "delete_refused", "batches",
        "attempts", "retried", "source", "target", "warnings", "error", "exit_code",
    )  # fmt: skip

    def start_attempt(self) -> None:
        """Forget what the previous pass found; keep what it committed."""
        super().start_attempt()
        self.source_ids = self.present = self.missing = self.rejected = self.orphans = 0
        self.rejected_samples.clear()
        if self.dry_run:  # a run's samples were stored: the next pass will not find them
            self.missing_samples.clear()
        self.orphan_samples.clear()
        self.kept_live = self.kept_referenced = self.delete_refused = 0
        self.kept_referenced_samples.clear()
        if self.dry_run:
            self.deleted = 0
            self.deleted_samples.clear()
        self.warnings.clear()

    def orphan(self, text: str) -> None:
        if len(self.orphan_samples) < MAX_SAMPLES:
            self.orphan_samples.append(shown_text(text))

    def outcome(self) -> Status:
        return Status.PARTIAL if self.rejected or self.kept_referenced else Status.OK

    def end_line(self) -> tuple[str, dict[str, int]]:
        figures = f"{self.inserted} inserted, {self.rejected} rejected, {self.duration_s:.2f} s"
        return figures, {"inserted": self.inserted, "rejected": self.rejected}

    @property
    def orphans_done(self) -> str:
        """What happens to orphans, as a verb: ``deleted``, ``marked (gone_at)``."""
        mark = self.orphan_action.partition(":")[2]
        verb = f"mark{'' if self.dry_run else 'ed'} ({mark})" if mark else "delete"
        return verb if mark or self.dry_run else "deleted"

    def time_line(self) -> str:
        shown = " · ".join(
            f"{name.removesuffix('_s').replace('_', ' ')} {seconds:.2f}"
            for name, seconds in self.phases.items()
        )
        bound = f" (bound by the {self.bound_by})" if self.bound_by else ""
        return f"  time    {shown} s{bound}"

    def to_text(self) -> str:
        src, tgt = self.source, self.target
        lines = [
            f"{self.job}: {self.status}{' (dry run)' if self.dry_run else ''}",
            f"  source  {src.get('address', '?')}/{src.get('database', '?')}"
            f" {src.get('collection', '?')}.{src.get('field', '?')}"
            f" ({src.get('flavour', '?')}, {src.get('scan', '?')} scan"
            f"{f', {self.plan} plan' if self.plan else ''}): {self.source_ids:,} ids",
            f"  target  {tgt.get('address', '?')}/{tgt.get('database', '?')}"
            f" {tgt.get('table', '?')}.{tgt.get('column', '?')}: {self.target_ids_before:,} before",
            f"  missing {self.missing:,} · {'would insert' if self.dry_run else 'inserted'}"
            f" {self.missing if self.dry_run else self.inserted:,}"
            + (f" · restored {self.restored:,}" if self.restored else "")
            + f" · rejected {self.rejected:,} · orphans {self.orphans:,} · {self.duration_s:.2f} s",
        ]
        if self.mirror:
            lines.append(
                f"  orphans {'would ' if self.dry_run else ''}{self.orphans_done} {self.deleted:,}"
                f" · kept: live again {self.kept_live:,}, referenced {self.kept_referenced:,}"
                + (f" · refused {self.delete_refused:,}" if self.delete_refused else "")
            )
            lines += [f"  kept {r.id!r}: {r.reason}" for r in self.kept_referenced_samples[:5]]
        if self.phases:
            lines.append(self.time_line())
        lines += [f"  rejected {r.id!r}: {r.reason}" for r in self.rejected_samples[:5]]
        if self.rejected > 5:
            lines.append(f"  … {self.rejected - 5:,} more rejected (see --json)")
        return "\n".join(lines + self.tail_lines())
