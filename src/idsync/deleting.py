"""Deleting orphans exactly, whatever the server: lock, re-verify, delete, re-verify, commit.
(A soft delete runs the same steps; its "delete" sets the mark of unmarked rows.)

Mirror mode needs a UNIQUE index on an exact column (binary, NO PAD, deterministic): a text
then names one row, and no other text is equal to it. What keeps a live id is the second look.
Once its row is deleted (not yet committed), a writer inserting the id waits for this
transaction and inserts it after the commit; a writer that upserted it before the delete did
so because the source had it by then, and the look after the delete sees that: the whole batch
is rolled back and tried again without it. The look before the delete only spares most batches
that try.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from idsync.session import isolating
from idsync.target import DeleteResult

NOT_DELETED = "not deleted by the server (a trigger, rule or row security kept the row)"


@dataclass(frozen=True)
class DeleteSteps:
    """A server's statements for one batch, run in one transaction of its connection."""

    lock: Callable[[list[str]], list[str]]
    """Which of the texts are stored, their rows locked until the transaction ends."""
    send: Callable[[list[str]], int]
    """Delete the rows of the texts; the rows deleted."""
    refusal: Callable[[Exception], str | None]
    """What references a row, for an error that says a foreign key refused its delete."""
    run: Callable[[str], object]
    """Execute a savepoint statement."""
    commit: Callable[[], None]
    rollback: Callable[[], None]


def delete_exactly(
    texts: Sequence[str], live: Callable[[list[str]], set[str]], steps: DeleteSteps
) -> DeleteResult:
    """Delete the rows of ``texts`` that the source does not have (``live`` says which it has),
    in one committed transaction; roll back on any error, ``live``'s included.

    A try whose second look finds a text live again is rolled back, and the next try leaves
    that text out (kept, live): each failed try keeps one text more, so it ends."""
    back: list[str] = []
    try:
        while True:
            tried = [text for text in texts if text not in back] if back else list(texts)
            result = _attempt_once(tried, live, steps)
            if isinstance(result, DeleteResult):
                steps.commit()
                result.live += back
                return result
            steps.rollback()
            back += result
    except BaseException:
        steps.rollback()
        raise


def _attempt_once(
    texts: Sequence[str], live: Callable[[list[str]], set[str]], steps: DeleteSteps
) -> DeleteResult | list[str]:
    """One try, not committed; or the deleted texts the source gained meanwhile."""
    result = DeleteResult()
    present = set(steps.lock(list(texts)))
    alive = live(sorted(present)) if present else set()
    result.gone = [text for text in texts if text not in present]
    result.live = [text for text in texts if text in alive]
    doomed = [text for text in texts if text in present and text not in alive]
    result.rows, result.referenced = isolating(doomed, steps.send, steps.refusal, steps.run)
    kept = {text for text, _reason in result.referenced}
    tried = [text for text in doomed if text not in kept]
    # A trigger or rule may have kept a row the statement was asked to delete.
    still = set(steps.lock(tried)) if tried and result.rows < len(tried) else set()
    result.referenced += [(text, NOT_DELETED) for text in tried if text in still]
    result.deleted = [text for text in tried if text not in still]
    regained = live(result.deleted) if result.deleted else set()
    if regained:
        return sorted(regained)
    return result
