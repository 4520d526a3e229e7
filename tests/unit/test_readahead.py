"""Reading ahead on a thread: order, errors where they belong, and a stop that closes the source."""

import threading
from collections.abc import Iterator

import pytest

from idsync.run.readahead import ReadAhead


def test_items_come_out_in_order() -> None:
    with ReadAhead(iter(range(1000)), depth=3) as items:
        assert list(items) == list(range(1000))


def test_a_source_error_is_raised_where_the_consumer_reaches_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("server gone")

    seen: list[int] = []
    with pytest.raises(ConnectionError, match="server gone"), ReadAhead(source()) as items:
        for item in items:
            seen.append(item)
    assert seen == [1, 2]


def _join_readers() -> None:
    """Wait for every read-ahead thread to end (pytest's timeout bounds a hang)."""
    for thread in threading.enumerate():
        if thread.name == "idsync-read-ahead":
            thread.join()


def test_leaving_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()
    produced: list[int] = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                produced.append(n)
                yield n
                n += 1
        finally:
            closed.set()

    with ReadAhead(endless(), depth=2) as items:
        for item in items:
            if item == 5:
                break
    _join_readers()
    assert closed.is_set(), "the source was not closed"
    assert len(produced) <= 5 + 1 + 2 + 1  # at most `depth` (and the one in hand) beyond


def test_it_reads_no_further_ahead_than_its_depth() -> None:
    # Each item records how many the consumer had taken when it was produced: the thread may
    # be `depth` items ahead in the queue, plus the one it holds, plus one the consumer has
    # dequeued but not yet counted.
    taken = 0
    lead: list[int] = []

    def counted() -> Iterator[int]:
        for n in range(100):
            lead.append(n - taken)
            yield n

    firsts: list[tuple[int, int]] = []  # (the first item, items produced when it came)
    with ReadAhead(counted(), depth=4) as items:
        for item in items:
            if not firsts:
                firsts.append((item, len(lead)))
            taken += 1
    assert taken == 100
    assert max(lead) <= 4 + 1
    first, produced = firsts[0]
    assert first == 0
    assert produced <= 1 + 4 + 1
