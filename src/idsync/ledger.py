"""The ledger of `idsync work`: a round's `_id` ranges in a table of the target's database.

A round is planned once (by the worker that finds none unfinished, under the target's run
lock) and worked by every worker that comes: each claims a range with ``FOR UPDATE SKIP
LOCKED`` (two workers never wait for, nor take, the same row) and a lease that it renews as it
goes. A worker that dies leaves its range claimed until the lease ends; then any worker takes
it again. A range done twice inserts nothing twice: inserts are idempotent, and `work` requires
a UNIQUE index on the column.

The statements differ between servers only in how they read the clock: each server package
gives its own :class:`LedgerSQL` from :func:`ledger_sql`.
"""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from idsync.errors import IdsyncError

RANGES_TABLE = "idsync_ranges"
OBJECT_IDS, OTHERS = "ids", "rest"
"""A range's kind: ObjectIds from ``lo`` (included) to ``hi`` (excluded), or every `_id` that
is not an ObjectId (few in practice: one range)."""

_T = TypeVar("_T")


class LedgerSession(Protocol):
    def fetch(
        self, sql: str, args: Sequence[object] = (), doing: str = "querying"
    ) -> list[tuple[Any, ...]]: ...
    def transaction(self, work: Callable[[Any], _T], doing: str) -> _T: ...


@dataclass(frozen=True)
class LedgerSQL:
    create: str
    exists: str
    rounds: str
    latest_round: str
    new_range: str
    claim: str
    take: str
    renew: str
    give_back: str
    finish: str
    progress: str
    reopen: str
    last_finish: str


def ledger_sql(ddl: str, now: str, later: str) -> LedgerSQL:
    """The statements, given the table's DDL, the server's clock (``now``) and the clock plus
    ``%s`` seconds (``later``)."""
    mine = "job = %s AND round_id = %s AND idx = %s AND owner = %s"
    return LedgerSQL(
        create=ddl,
        exists=f"SELECT 1 FROM {RANGES_TABLE} WHERE 1 = 0",
        rounds=f"SELECT job, MAX(round_id) FROM {RANGES_TABLE} GROUP BY job ORDER BY job",
        latest_round=f"SELECT MAX(round_id) FROM {RANGES_TABLE} WHERE job = %s",
        new_range=(
            f"INSERT INTO {RANGES_TABLE} (job, round_id, idx, kind, lo, hi, state, attempts)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'todo', 0)"
        ),
        # Free ranges, ranges whose lease has ended, and this worker's own (a retried attempt
        # takes back what it held), first by index; rows other workers lock are skipped.
        claim=(
            f"SELECT idx, kind, lo, hi FROM {RANGES_TABLE} WHERE job = %s AND round_id = %s"
            f" AND (state = 'todo' OR (state = 'claimed' AND (lease_until < {now} OR owner = %s)))"
            " ORDER BY idx LIMIT 1 FOR UPDATE SKIP LOCKED"
        ),
        take=(
            f"UPDATE {RANGES_TABLE} SET state = 'claimed', owner = %s, lease_until = {later},"
            " attempts = attempts + 1 WHERE job = %s AND round_id = %s AND idx = %s"
        ),
        # `beats` changes every time: MySQL counts changed rows, and a lease renewed within the
        # same millisecond would otherwise read as a range lost.
        renew=(
            f"UPDATE {RANGES_TABLE} SET lease_until = {later}, beats = beats + 1"
            f" WHERE {mine} AND state = 'claimed'"
        ),
        give_back=(
            f"UPDATE {RANGES_TABLE} SET state = 'todo', owner = NULL, lease_until = NULL"
            f" WHERE {mine} AND state = 'claimed'"
        ),
        finish=(
            f"UPDATE {RANGES_TABLE} SET state = 'done', source_ids = %s, inserted = %s,"
            f" rejected = %s, finished_at = {now} WHERE {mine} AND state = 'claimed'"
        ),
        progress=(
            f"SELECT state, COUNT(*), SUM(CASE WHEN lease_until < {now} THEN 1 ELSE 0 END),"
            f" COALESCE(SUM(source_ids), 0), COALESCE(SUM(inserted), 0),"
            f" COALESCE(SUM(rejected), 0) FROM {RANGES_TABLE}"
            " WHERE job = %s AND round_id = %s GROUP BY state"
        ),
        # The ranges new documents go to (the last ObjectIds', open above, and the rest) done
        # before a moment.
        reopen=(
            f"UPDATE {RANGES_TABLE} SET state = 'todo', owner = NULL, lease_until = NULL"
            f" WHERE job = %s AND round_id = %s AND state = 'done'"
            f" AND (kind = '{OTHERS}' OR hi IS NULL) AND finished_at < %s"
        ),
        last_finish=(
            f"SELECT MAX(finished_at) FROM {RANGES_TABLE} WHERE job = %s AND round_id = %s"
            f" AND kind <> '{OTHERS}' AND hi IS NOT NULL"
        ),
    )


@dataclass(frozen=True)
class Range:
    round_id: int
    idx: int
    kind: str
    lo: str | None
    hi: str | None

    def __str__(self) -> str:
        if self.kind == OTHERS:
            return f"range {self.idx} (every _id that is not an ObjectId)"
        return f"range {self.idx} [{self.lo or 'first'}, {self.hi or 'last'})"


@dataclass(frozen=True)
class Progress:
    """Where a round stands: ranges by state, ids read and inserted by those done."""

    round_id: int
    todo: int = 0
    claimed: int = 0
    expired: int = 0
    """Claimed ranges whose lease has ended: their worker is gone, any worker takes them."""
    done: int = 0
    source_ids: int = 0
    inserted: int = 0
    rejected: int = 0

    @property
    def finished(self) -> bool:
        return self.todo == 0 and self.claimed == 0


def worker_name() -> str:
    """Who holds a claim: the host, the process and a nonce (two workers in one process)."""
    host = socket.gethostname()[:100]
    return f"{host} pid={os.getpid()} {uuid.uuid4().hex[:6]}"


def split(first: str, last: str, count: int) -> list[tuple[str | None, str | None]]:
    """``count`` ranges of ObjectIds (their texts) by creation time, evenly from ``first`` to
    ``last`` (fewer when they span too few seconds). The first is open below, the last open
    above, so the ranges cover every ObjectId, whatever arrives after the plan. An ObjectId
    begins with its creation time in seconds, big-endian: the text of the first ObjectId of a
    second is those 8 hex digits and 16 zeros."""
    start, end = int(first[:8], 16), int(last[:8], 16)
    span = end - start + 1
    seconds = sorted({start + span * i // count for i in range(1, max(count, 1))} - {start})
    cuts: list[str | None] = [f"{second:08x}{'0' * 16}" for second in seconds]
    bounds = [None, *cuts, None]
    return list(itertools.pairwise(bounds))


class Ledger:
    """A job's ranges on one target connection."""

    def __init__(self, session: LedgerSession, sql: LedgerSQL, job: str) -> None:
        self.session, self.sql, self.job = session, sql, job

    def create(self) -> bool:
        """Create the table if missing (whether it did): a worker whose user may not create
        tables works on one made by `idsync init`. Workers started together race to make it,
        and PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against that (a duplicate
        type): the loser tries again and finds the table there."""
        for attempt in range(3):
            if self._exists():
                return False
            try:
                self.session.transaction(
                    lambda c: c.execute(self.sql.create), f"creating {RANGES_TABLE}"
                )
                return True
            except IdsyncError:
                if attempt == 2:
                    raise
        return False

    def _exists(self) -> bool:
        try:
            self.session.fetch(self.sql.exists, (), f"reading {RANGES_TABLE}")
        except IdsyncError:
            return False
        return True

    def latest_round(self) -> int | None:
        [(latest,)] = self.session.fetch(self.sql.latest_round, (self.job,), "reading the ledger")
        return None if latest is None else int(latest)

    def new_round(self, bounds: list[tuple[str | None, str | None]]) -> int:
        """A new round: a range per bound pair, and one for the `_id`s that are not ObjectIds."""
        round_id = int(datetime.now(UTC).timestamp() * 1000)
        latest = self.latest_round()
        round_id = max(round_id, (latest or 0) + 1)
        rows = [(OBJECT_IDS, lo, hi) for lo, hi in bounds] + [(OTHERS, None, None)]

        def insert(cursor: Any) -> None:  # one statement for them all: the lock is held
            cursor.executemany(self.sql.new_range, [
                (self.job, round_id, idx, kind, lo, hi) for idx, (kind, lo, hi) in enumerate(rows)
            ])  # fmt: skip

        self.session.transaction(insert, f"planning a round in {RANGES_TABLE}")
        return round_id

    def claim(self, round_id: int, owner: str, lease_s: int) -> Range | None:
        def take(cursor: Any) -> Range | None:
            cursor.execute(self.sql.claim, (self.job, round_id, owner))
            row = cursor.fetchone()
            if row is None:
                return None
            idx, kind, lo, hi = row
            cursor.execute(self.sql.take, (owner, lease_s, self.job, round_id, idx))
            return Range(round_id, int(idx), str(kind), lo, hi)

        return self.session.transaction(take, f"claiming a range in {RANGES_TABLE}")

    def _mine(self, sql: str, args: tuple[object, ...], part: Range, owner: str) -> bool:
        """Run ``sql`` on ``part`` if ``owner`` still holds it; whether it did."""

        def update(cursor: Any) -> bool:
            cursor.execute(sql, (*args, self.job, part.round_id, part.idx, owner))
            return bool(cursor.rowcount)

        return self.session.transaction(update, f"updating {RANGES_TABLE}")

    def renew(self, part: Range, owner: str, lease_s: int) -> bool:
        """Extend the lease; False when another worker has taken the range meanwhile."""
        return self._mine(self.sql.renew, (lease_s,), part, owner)

    def give_back(self, part: Range, owner: str) -> None:
        self._mine(self.sql.give_back, (), part, owner)

    def finish(self, part: Range, owner: str, counts: tuple[int, int, int]) -> bool:
        """Mark ``part`` done with (source ids, inserted, rejected); False if it was no longer
        this worker's (another took it after the lease ended: it will finish it too)."""
        return self._mine(self.sql.finish, counts, part, owner)

    def newest_rounds(self, job: str | None) -> list[tuple[str, int]]:
        """(key, round) of each key's newest round: ``job``'s keys (its name and ``@``), or
        every job's."""
        rows = self.session.fetch(self.sql.rounds, (), "reading the ledger")
        keys = [(str(key), int(round_id)) for key, round_id in rows]
        return [(key, r) for key, r in keys if job is None or key.startswith(f"{job}@")]

    def progress(self, round_id: int) -> Progress:
        rows = self.session.fetch(self.sql.progress, (self.job, round_id), "reading the ledger")
        states = {str(state): (int(n), int(expired or 0), int(s), int(i), int(r))
                  for state, n, expired, s, i, r in rows}  # fmt: skip
        claimed = states.get("claimed", (0, 0, 0, 0, 0))
        done = states.get("done", (0, 0, 0, 0, 0))
        return Progress(
            round_id, todo=states.get("todo", (0,))[0], claimed=claimed[0], expired=claimed[1],
            done=done[0], source_ids=done[2], inserted=done[3], rejected=done[4],
        )  # fmt: skip

    def reopen_stale(self, round_id: int, older_than_s: float) -> int:
        """Put back the ranges new documents go to when they were done more than
        ``older_than_s`` before the round's last other range: a round finished long after it
        began then covers what came meanwhile (once: done again, they are done after every
        other). The number of ranges put back."""

        def update(cursor: Any) -> int:
            cursor.execute(self.sql.last_finish, (self.job, round_id))
            (last,) = cursor.fetchone()
            if last is None:
                return 0
            cursor.execute(
                self.sql.reopen, (self.job, round_id, last - timedelta(seconds=older_than_s))
            )
            return int(cursor.rowcount)

        return self.session.transaction(update, "reopening ranges in the ledger")
