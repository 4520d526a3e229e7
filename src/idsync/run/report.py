"""SyncReport: what a run did, as a typed object, a JSON object or a short text summary."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from idsync.errors import IdsyncError
from idsync.ids import shown_text

MAX_SAMPLES = 20


class Status(StrEnum):
    """Outcome of a run; each has its exit code."""

    OK = "ok"
    """Finished; every id the source has is in the target (or would be, in a dry run)."""
    PARTIAL = "partial"
    """Finished, but some ids were rejected: see ``rejected_samples``."""
    FAILED = "failed"
    """Stopped by an error; batches committed before it stay committed."""
    REFUSED = "refused"
    """Stopped by a safety guard before writing anything more."""


EXIT_CODES = {Status.OK: 0, Status.FAILED: 1, Status.REFUSED: 3, Status.PARTIAL: 4}


@dataclass
class Rejected:
    """One id that was not inserted, and why."""

    id: str
    reason: str


@dataclass
class SyncReport:
    """Figures of one run of one job. Counts are of distinct ids unless said otherwise."""

    job: str
    dry_run: bool = False
    status: Status = Status.OK
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    duration_s: float = 0.0
    source_ids: int = 0
    """Values read from the source (one per document for `_id`)."""
    target_ids_before: int = 0
    """Distinct non-null values in the target column when the run started."""
    present: int = 0
    """Source ids already in the target."""
    missing: int = 0
    """Source ids not in the target that can be stored: what a run inserts."""
    inserted: int = 0
    """Rows this run added."""
    concurrent: int = 0
    """Missing ids that another writer stored while this run was inserting."""
    rejected: int = 0
    """Source ids that cannot be stored exactly; never inserted."""
    rejected_samples: list[Rejected] = field(default_factory=list)
    orphans: int = 0
    """Target ids with no source id: reported only, never deleted."""
    orphan_samples: list[str] = field(default_factory=list)
    batches: int = 0
    attempts: int = 0
    """Passes made: 1, plus one per transient failure retried."""
    retried: list[str] = field(default_factory=list)
    """The transient errors that were retried, in order."""
    source: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    exit_code: int = 0
    _clock: float = field(default_factory=time.monotonic, repr=False)

    def start_attempt(self) -> None:
        """Forget what the previous pass found; keep what it committed."""
        self.attempts += 1
        self.source_ids = self.present = self.missing = self.rejected = self.orphans = 0
        self.rejected_samples.clear()
        self.orphan_samples.clear()
        self.warnings.clear()

    def reject(self, text: str, reason: str) -> None:
        self.rejected += 1
        if len(self.rejected_samples) < MAX_SAMPLES:
            self.rejected_samples.append(Rejected(text, reason))

    def orphan(self, text: str) -> None:
        if len(self.orphan_samples) < MAX_SAMPLES:
            self.orphan_samples.append(shown_text(text))

    def fail(self, exc: IdsyncError) -> None:
        self.error = str(exc)
        self.exit_code = exc.exit_code
        self.status = (
            Status.REFUSED if exc.exit_code == EXIT_CODES[Status.REFUSED] else Status.FAILED
        )

    def finish(self) -> None:
        self.duration_s = round(time.monotonic() - self._clock, 3)
        if self.error is None:
            self.status = Status.PARTIAL if self.rejected else Status.OK
            self.exit_code = EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_clock")
        data["status"] = str(self.status)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=False)

    def to_text(self) -> str:
        src, tgt = self.source, self.target
        lines = [
            f"{self.job}: {self.status}{' (dry run)' if self.dry_run else ''}",
            f"  source  {src.get('address', '?')}/{src.get('database', '?')}"
            f" {src.get('collection', '?')}.{src.get('field', '?')}"
            f" ({src.get('flavour', '?')}, {src.get('scan', '?')} scan): {self.source_ids:,} ids",
            f"  target  {tgt.get('address', '?')}/{tgt.get('database', '?')}"
            f" {tgt.get('table', '?')}.{tgt.get('column', '?')}: {self.target_ids_before:,} before",
            f"  missing {self.missing:,} · {'would insert' if self.dry_run else 'inserted'}"
            f" {self.missing if self.dry_run else self.inserted:,}"
            f" · rejected {self.rejected:,} · orphans {self.orphans:,} · {self.duration_s:.2f} s",
        ]
        lines += [f"  rejected {r.id!r}: {r.reason}" for r in self.rejected_samples[:5]]
        if self.rejected > 5:
            lines.append(f"  … {self.rejected - 5:,} more rejected (see --json)")
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)
