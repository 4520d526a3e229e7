"""Deleting orphans exactly, whatever the server: lock, re-verify, delete, re-verify, commit.

What keeps a live id is the second look. Once a row is deleted (not yet committed), a writer
inserting its text waits for this transaction and inserts it after the commit; a writer that
inserted it before the delete did so because the source had it by then, and the look after the
delete sees that: the whole batch is rolled back and tried again. The look before the delete
only spares most batches that second try.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from idsync.session import isolating
from idsync.target import DeleteResult

ATTEMPTS = 3
"""Tries of a batch whose texts the source gained while it was being deleted."""


@dataclass(frozen=True)
class DeleteSteps:
    """A server's statements for one batch, run in one transaction of its connection."""

    lock: Callable[[list[str]], list[str]]
    """The stored values equal to any of the texts under the column's collation, their rows
    locked until the transaction ends."""
    send: Callable[[list[str]], int]
    """Delete the rows equal to the texts; the rows deleted."""
    refusal: Callable[[Exception], str | None]
    """What references a row, for an error that says a foreign key refused its delete."""
    run: Callable[[str], object]
    """Execute a savepoint statement."""
    commit: Callable[[], None]
    rollback: Callable[[], None]
    keys: Callable[[list[str]], list[bytes]] | None = None
    """Each text's collation key, where the collation takes different texts for equal."""


def delete_exactly(
    texts: Sequence[str], live: Callable[[list[str]], set[str]], steps: DeleteSteps
) -> DeleteResult:
    """Delete the rows of ``texts`` that the source does not have (``live`` says which it has),
    in one committed transaction; roll back on any error, ``live``'s included."""
    try:
        for _attempt in range(ATTEMPTS):
            result = _attempt_once(texts, live, steps)
            if result is not None:
                steps.commit()
                return result
            steps.rollback()
        steps.rollback()
    except BaseException:
        steps.rollback()
        raise
    # The source kept gaining these texts: keep every one of them, this time.
    return DeleteResult(live=list(texts))


def _attempt_once(
    texts: Sequence[str], live: Callable[[list[str]], set[str]], steps: DeleteSteps
) -> DeleteResult | None:
    """One try, not committed; None when the source gained a deleted text meanwhile."""
    result = DeleteResult()
    stored = sorted(set(steps.lock(list(texts))))
    alive = live(stored) if stored else set()
    present = set(stored)
    result.gone = [text for text in texts if text not in present]
    doomed = [text for text in texts if text in present and text not in alive]
    result.live = [text for text in texts if text in alive]
    if steps.keys is not None and doomed:
        # Deleting one text deletes every stored text equal to it under the collation: a text
        # equal to a live one stays, with it; the others equal to it are looked at after.
        key_of = dict(zip(stored, steps.keys(stored), strict=True))
        blocked = {key_of[text] for text in alive}
        result.live += [text for text in doomed if key_of[text] in blocked]
        doomed = [text for text in doomed if key_of[text] not in blocked]
        gone_with = {key_of[text] for text in doomed}
        watched = [text for text in stored if key_of[text] in gone_with]
    else:
        watched = doomed
    result.rows, result.referenced = isolating(doomed, steps.send, steps.refusal, steps.run)
    kept = {text for text, _reason in result.referenced}
    result.deleted = [text for text in doomed if text not in kept]
    if result.deleted and live([text for text in watched if text not in kept]):
        return None
    return result
