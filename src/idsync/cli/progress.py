"""A progress display for terminals (the CLI's; the library only reports to a Progress)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_LABELS = {"target": "reading target", "source": "scanning source", "insert": "inserted"}


class RichProgress:
    """Bars on stderr: target ids read, source ids scanned (with ETA), ids inserted (with rate)."""

    def __init__(self) -> None:
        self._bar = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()

    def start(self, phase: str, total: int | None) -> None:
        if phase not in self._tasks:
            self._tasks[phase] = self._bar.add_task(_LABELS.get(phase, phase), total=total, rate="")

    def advance(self, phase: str, count: int) -> None:
        if phase not in self._tasks:
            self.start(phase, None)
        task_id = self._tasks[phase]
        self._bar.advance(task_id, count)
        speed = self._bar.tasks[task_id].speed
        self._bar.update(task_id, rate=f"{speed:>10,.0f} ids/s" if speed else "")
