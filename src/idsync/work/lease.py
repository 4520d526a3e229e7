"""A claimed range's lease, renewed by a thread of its own while the range is worked."""

from __future__ import annotations

import threading
from types import TracebackType

from idsync.errors import IdsyncError
from idsync.ledger import Ledger, Range


class Heartbeat:
    """Renews the lease every third of it, on the ledger's own connection, for as long as the
    worker lives: however long one batch takes (on a server without range reads, the first of
    a range is a scan of the whole collection), a live worker's range is never taken over.
    Only a dead worker's lease ends. ``lost`` says another worker took the range anyway (this
    one was silent past its lease: a network gone, a process frozen)."""

    def __init__(self, ledger: Ledger, part: Range, owner: str, lease_s: int) -> None:
        self.ledger, self.part, self.owner, self.lease_s = ledger, part, owner, lease_s
        self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="idsync-lease", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()  # the ledger's connection is the caller's again

    def _beat(self) -> None:
        while not self._done.wait(max(self.lease_s / 3, 0.2)):
            try:
                if not self.ledger.renew(self.part, self.owner, self.lease_s):
                    self.lost = True
                    return
            except IdsyncError:
                continue  # the next beat tries again; past the lease, the range is another's
