"""Read a stream ahead on a thread, so that the server prepares the next batch while we diff this
one (and while the target's ids are read): the drivers release the GIL while they wait."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Generic, TypeVar

_T = TypeVar("_T")
_POLL_S = 0.1


class _End:
    """Put after the last item."""


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(Generic[_T]):
    """Iterate ``source`` on a daemon thread, at most ``depth`` items ahead of the consumer.

    Items come out in order; an exception of the source is raised where the consumer reaches
    it. Leaving the ``with`` block (at the end, or early on any error) tells the thread to stop
    at its next item; it then closes ``source`` itself, in the thread that used it.
    """

    def __init__(self, source: Iterator[_T], depth: int = 4) -> None:
        self._source = source
        self._items: queue.Queue[_T | _End | _Failed] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="idsync-read-ahead", daemon=True)

    def __enter__(self) -> ReadAhead[_T]:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        # Not joined: the thread may be waiting on a server that no longer answers; the
        # caller's closing of its connection (or the socket timeout) ends that wait.

    def __iter__(self) -> Iterator[_T]:
        while True:
            item = self._items.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def _pump(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    break
            else:
                self._put(_End())
        except BaseException as error:
            self._put(_Failed(error))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    def _put(self, item: _T | _End | _Failed) -> bool:
        """Queue ``item`` unless told to stop meanwhile; whether it was queued."""
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=_POLL_S)
            except queue.Full:
                continue
            return True
        return False
