"""The two ways of following a source: a change stream, or polling for newer ObjectIds.

Each runs until ``stop`` is set or something fails; the watcher (:mod:`watcher`) decides
what a failure means and starts a follower again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime

from idsync.mongo.feeds import (
    Change,
    Poller,
    StreamFeed,
    StreamLost,
    decode_token,
    encode_token,
    now_utc,
)
from idsync.mongo.source import MongoSource
from idsync.target import Checkpoint
from idsync.watch.core import POLLING, STREAM, Core, when
from idsync.watch.sink import PendingBatch

log = logging.getLogger("idsync")


class StreamFollower:
    """Insert events, batched; each batch committed with the resume token after it."""

    def __init__(self, core: Core, source: MongoSource) -> None:
        self.core, self.job = core, core.job
        # A delete event names the `_id` only: another field's values are left to full passes.
        deletes = core.sink.mirror and core.job.field == "_id"
        self.feed = StreamFeed(source, core.options.max_batch_wait_s, core.stop, deletes)

    def run(self) -> None:
        try:
            self._start()
            self.core.set_mode(STREAM)
            self.core.started = True
            self._loop()
        finally:
            self.feed.close()

    def _start(self) -> None:
        core, feed = self.core, self.feed
        stored = core.sink.checkpoint
        if stored is not None and stored.resume_token and not core.token_unusable:
            try:
                feed.open(decode_token(stored.resume_token))
                # A checkpoint this process saved has no server time of its own yet.
                saved = f" of {when(stored.updated_at)}" if stored.updated_at else ""
                log.info(
                    "[%s] following %s at %s by change stream, from the last checkpoint%s",
                    self.job.name, self.job.collection, feed.source.address, saved,
                )  # fmt: skip
                if core.pass_due():
                    core.reconcile()
                return
            except (StreamLost, ValueError) as exc:
                core.count_lost()
                log.warning("[%s] stored resume token unusable: %s", self.job.name, exc)
        opened_at = now_utc()
        feed.open(None)
        log.info(
            "[%s] following %s at %s by change stream, from now",
            self.job.name, self.job.collection, feed.source.address,
        )  # fmt: skip
        # The new position is saved only once the pass covering the time before it is done:
        # a crash in between finds the old checkpoint, and covers the gap again.
        self._cover_gap(stored)
        last_id = stored.last_seen_id if stored else None
        core.save(Checkpoint(STREAM, encode_token(feed.token), last_id, opened_at))
        core.token_unusable = False

    def _cover_gap(self, stored: Checkpoint | None) -> None:
        """Before a stream opened from now: the ids created since the checkpoint."""
        core = self.core
        since = stored.last_seen_time if stored else None
        if core.pass_due() or (stored is not None and since is None):
            core.full_pass()
        elif since is not None:
            core.gap_pass(self.feed.source, since)
        else:
            log.info(
                "[%s] no checkpoint and no first pass: following from now; older ids come "
                "with the next full pass",
                self.job.name,
            )

    def _loop(self) -> None:
        core = self.core
        batch = core.sink.new_batch()
        while not core.stop.is_set():
            if core.pass_due():
                self._flush(batch)
                batch = core.sink.new_batch()
                core.reconcile()
                continue
            try:
                change = self.feed.next()
            except StreamLost:
                self._flush(batch)  # what came before the loss is good: keep it
                raise
            if change is not None:
                batch.add(change)
            if len(batch) and (change is None or self._due(batch)):
                self._flush(batch)
                batch = core.sink.new_batch()
            elif change is None:
                self._idle(encode_token(self.feed.token))
                self.feed.idle()
        self._flush(batch)

    def _due(self, batch: PendingBatch) -> bool:
        size = self.job.batch_size
        return (
            len(batch.texts) >= size
            or len(batch) >= size
            or batch.age() >= self.core.options.max_batch_wait_s
        )

    def _flush(self, batch: PendingBatch) -> None:
        if not len(batch):
            return
        previous = self.core.sink.checkpoint
        checkpoint = Checkpoint(
            STREAM,
            encode_token(batch.token),
            batch.last_id or (previous.last_seen_id if previous else None),
            batch.newest_at or (previous.last_seen_time if previous else None),
        )
        self.core.commit(batch, checkpoint, self.feed.source.live)

    def _idle(self, token: str | None) -> None:
        """Caught up: everything read is committed. Save a moved position now and then."""
        core = self.core
        stored = core.sink.checkpoint
        if stored is not None and token not in (None, stored.resume_token) and core.save_due():
            # The time stays: a position reached while idle says nothing about documents.
            core.save(replace(stored, mode=STREAM, resume_token=token))
        # Progress only once the save due is made: a save that fails every time (UPDATE
        # denied) must not pass for progress, which would hide it and restart the backoff.
        core.progress()
        core.metrics.caught_up()


class PollFollower:
    """New ObjectIds every ``poll_interval_s``, looking back ``poll_window_s`` each time."""

    def __init__(self, core: Core, source: MongoSource) -> None:
        self.core, self.job, self.source = core, core.job, source
        self.poller = Poller(source, core.options.poll_window_s)

    def run(self) -> None:
        core, options = self.core, self.core.options
        since = self._start()
        log.info(
            "[%s] following %s at %s by polling every %g s (window %g s), from %s",
            self.job.name, self.job.collection, self.source.address,
            options.poll_interval_s, options.poll_window_s, when(since),
        )  # fmt: skip
        core.set_mode(POLLING)
        core.started = True
        while not core.stop.is_set():
            if core.pass_due():
                core.reconcile()
            began, polled_at = time.monotonic(), now_utc()
            changes = self.poller.poll(since)
            self._commit(changes, polled_at)
            self.poller.remember(changes)
            # The poll's start, not the newest id seen: an id from a clock running ahead must
            # not carry the next polls past ids that other clients are still creating.
            since = polled_at
            core.progress()
            if not changes:
                core.metrics.caught_up()
            core.stop.wait(max(0.0, options.poll_interval_s - (time.monotonic() - began)))

    def _start(self) -> datetime:
        """Where polling starts: a first full pass's start, else the checkpoint, else now."""
        core = self.core
        stored = core.sink.checkpoint
        began = now_utc()
        if core.pass_due():
            core.full_pass()
            since = began
        elif stored is not None and stored.last_seen_time is not None:
            since = stored.last_seen_time
        else:
            since = began
        last_id = stored.last_seen_id if stored else None
        core.save(Checkpoint(POLLING, None, last_id, since))
        return since

    def _commit(self, changes: list[Change], polled_at: datetime) -> None:
        core, size = self.core, self.job.batch_size
        previous = core.sink.checkpoint
        for start in range(0, len(changes), size):
            batch = core.sink.new_batch()
            for change in changes[start : start + size]:
                batch.add(change)
            last = start + size >= len(changes)
            last_id = batch.last_id or (previous.last_seen_id if previous else None)
            # Only the poll's last batch moves the position: a crash in between polls again.
            core.commit(batch, Checkpoint(POLLING, None, last_id, polled_at) if last else None)
        if not changes and previous is not None and core.save_due():
            core.save(replace(previous, mode=POLLING, last_seen_time=polled_at))
