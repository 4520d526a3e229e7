"""WorkReport: what one `idsync work` process did in a round."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from idsync.envelope import BaseReport, Status


@dataclass
class WorkReport(BaseReport):
    """Figures of one worker: the ranges it finished and what they held."""

    round_id: int | None = None
    ranges: int = 0
    """Ranges this worker finished."""
    ranges_in_round: int = 0
    source_ids: int = 0
    """Ids read from the source in the ranges this worker finished (and began)."""
    inserted: int = 0
    restored: int = 0
    """Ids whose row was marked as an orphan's (soft delete): the mark cleared."""
    concurrent: int = 0
    """Missing ids another writer stored while this worker was inserting them."""
    batches: int = 0
    round_rejected: int = 0
    """Ids rejected in the whole round (by any worker): the round's outcome is each worker's."""

    KEYS: ClassVar[tuple[str, ...]] = (
        "job", "status", "run_id", "started_at", "duration_s", "phases", "round_id", "ranges",
        "ranges_in_round", "source_ids", "inserted", "restored", "concurrent", "rejected",
        "rejected_samples", "round_rejected", "batches", "attempts", "retried", "warnings", "error",
        "exit_code",
    )  # fmt: skip

    def outcome(self) -> Status:
        return Status.PARTIAL if self.rejected or self.round_rejected else Status.OK

    def end_line(self) -> tuple[str, dict[str, int]]:
        figures = (
            f"{self.ranges} ranges, {self.inserted} inserted, {self.rejected} rejected,"
            f" {self.duration_s:.2f} s"
        )
        return figures, {"ranges": self.ranges, "inserted": self.inserted}

    def to_text(self) -> str:
        lines = [
            f"{self.job}: {self.status} · round {self.round_id} · {self.ranges} of"
            f" {self.ranges_in_round} ranges by this worker · source {self.source_ids:,}"
            f" · inserted {self.inserted:,} · rejected {self.rejected:,} · {self.duration_s:.2f} s"
        ]
        return "\n".join(lines + self.tail_lines())
