"""The dlt contenders' side of a scenario: dlt's own table, put in the scenario's state and checked.

dlt writes its own table in its own dataset (``bench/dlt_job.py``), so the bench's table is not
what a dlt run is judged by. Before each timed run (not timed):

- (a) first sync: dlt's dataset and its staging dataset dropped, its pipelines directory removed:
  the run creates everything, as a first run does;
- (b) 1% missing, (c) in sync: the table made complete once by an untimed run of the same
  contender when it is not, then, for (b), the scenario's missing ids deleted from it. The
  pipelines directory stays, as it would on a scheduled job's own volume.

After the run, every id of the table is read back: the run is exact when each of the source's ids
is there exactly once and nothing else is.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from bench.conn import mysql_connect, with_path
from bench.dlt_job import TABLE, dataset_name
from bench.scenarios import Dataset


def workdir(tmp: Path, contender: str) -> Path:
    """dlt's working directory for one contender, kept across the runs of one dataset."""
    return tmp / f"work-{contender}"


def exactness(found: Iterable[str], expected: Collection[str]) -> str | None:
    """None when ``found`` holds each of ``expected`` exactly once and nothing else; otherwise
    what is wrong, in a few words."""
    counts = Counter(found)
    problems = []
    if duplicated := sum(1 for n in counts.values() if n > 1):
        problems.append(f"{duplicated} ids more than once")
    if missing := sum(1 for i in expected if i not in counts):
        problems.append(f"{missing} ids missing")
    wanted = expected if isinstance(expected, set | frozenset) else set(expected)
    if extra := sum(1 for i in counts if i not in wanted):
        problems.append(f"{extra} ids not in the source")
    return "; ".join(problems) or None


class DltTarget:
    """One dlt contender's dataset for one bench dataset."""

    def __init__(self, mysql_url: str, dataset: Dataset, contender: str, tmp: Path) -> None:
        self.url = with_path(mysql_url, dataset.name)
        self.dataset, self.contender = dataset, contender
        self.schema = dataset_name(dataset.name, docs=contender == "dlt-docs")
        self.dir = workdir(tmp, contender)

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        conn = mysql_connect(self.url)
        try:
            cur = conn.cursor()
            cur.execute(sql, args)
            rows = list(cur.fetchall())
            conn.commit()
            return rows
        finally:
            conn.close()

    def _ids(self) -> list[str] | None:
        exists = self._query(
            "SELECT COUNT(*) FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name = %s",
            (self.schema, TABLE),
        )
        if not exists[0][0]:
            return None
        return [str(row[0]) for row in self._query(f"SELECT `_id` FROM `{self.schema}`.`{TABLE}`")]

    def check(self) -> str | None:
        """What is wrong with dlt's table after a run; None when it is exact."""
        ids = self._ids()
        return "no table" if ids is None else exactness(ids, set(self.dataset.ids))

    def reset(self, scenario: str, prime: Callable[[], Any]) -> None:
        """Put dlt's table (and working directory) in the state ``scenario`` starts from;
        ``prime`` runs the contender once, untimed, to fill the table."""
        if scenario == "a":
            for schema in (self.schema, f"{self.schema}_staging"):
                self._query(f"DROP DATABASE IF EXISTS `{schema}`")
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
            return
        if self.check() is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            prime()
            if problem := self.check():
                raise RuntimeError(f"{self.contender}: not exact after a priming run: {problem}")
        self._delete(self.dataset.missing(scenario))

    def _delete(self, ids: list[str]) -> None:
        """Delete ``ids`` from dlt's table, and their rows in its child tables (the whole-document
        variant's trips), which would otherwise stay behind as orphans."""
        root = f"`{self.schema}`.`{TABLE}`"
        children = self._query(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name LIKE %s",
            (self.schema, f"{TABLE}\\_\\_%"),
        )
        for start in range(0, len(ids), 1000):
            chunk = tuple(ids[start : start + 1000])
            marks = ", ".join(["%s"] * len(chunk))
            for (child,) in children:
                self._query(
                    f"DELETE FROM `{self.schema}`.`{child}` WHERE `_dlt_root_id` IN"
                    f" (SELECT `_dlt_id` FROM {root} WHERE `_id` IN ({marks}))",
                    chunk,
                )
            self._query(f"DELETE FROM {root} WHERE `_id` IN ({marks})", chunk)
