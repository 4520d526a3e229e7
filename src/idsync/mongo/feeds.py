"""The MongoDB side of a watcher: new values from a change stream, or from polling.

Both give :class:`Change` objects: the raw values a new document brings, when it happened, and
(for change streams) the resume token after it. Neither writes anything nor keeps state beyond
the connection: the watcher decides what is committed and where to resume.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId, Timestamp, json_util
from bson.errors import BSONError
from pymongo.change_stream import CollectionChangeStream
from pymongo.errors import OperationFailure, PyMongoError

from idsync.errors import IdsyncError, TerminalError, TransientError
from idsync.mongo.errors import RETRYABLE_CODES, mongo_error
from idsync.mongo.raw import field_values
from idsync.mongo.source import MongoSource

log = logging.getLogger(__name__)

# Codes MongoDB gives when a stream cannot go on from where it was: the resume point fell off
# the oplog (CappedPositionLost, ChangeStreamHistoryLost, and the 4.0 codes for the same) or
# the token is not valid for this stream (ChangeStreamFatalError, InvalidResumeToken). Only
# these drop a stored token: everything after it then needs a gap pass.
_POSITION_LOST = frozenset({136, 260, 280, 286, 40576, 40585})
# The change-streams specification's resumable errors are the retryable ones (servers before
# 4.4 give no label): the same token works once the server is back.
_RESUMABLE = RETRYABLE_CODES
_DENIED = frozenset({13, 18})  # Unauthorized, AuthenticationFailed
# Servers that ignore maxAwaitTimeMS answer an empty getMore at once: pause this long between
# two such answers rather than spin.
_IDLE_PAUSE_S = 0.05


class ChangeStreamsUnsupported(TerminalError):
    """The server cannot open a change stream at all (standalone server, FerretDB): asking
    again will not help; with ``--mode change-stream`` it is a usage error (exit 2)."""

    exit_code = 2


class StreamLost(TerminalError):
    """The stream cannot go on from its position: token too old or invalid, stream invalidated.

    Terminal for that position (resuming from it again fails again): what happened after it
    must be recovered some other way, a gap pass, before a new stream opens."""


def stream_error(exc: OperationFailure, address: str, doing: str, resuming: bool) -> IdsyncError:
    """What a server's refusal to open or read a change stream means. The position is gone
    (:class:`StreamLost`) only when its code says so; a resumable error is a
    :class:`~idsync.errors.TransientError` (the same token is tried again); any other refusal
    of a stream that had a position is terminal. Opening from now, an error other than a
    denial or a resumable one means the server has no change streams."""
    details = exc.details or {}
    reason = str(details.get("errmsg", exc))
    if exc.code is not None:
        reason += f" ({details.get('codeName', exc.code)})"
    if exc.code in _POSITION_LOST:
        return StreamLost(f"change stream lost its position: {reason}")
    if exc.code in _RESUMABLE or exc.has_error_label("ResumableChangeStreamError"):
        return TransientError(f"MongoDB at {address} failed while {doing}: {reason}")
    if resuming or exc.code in _DENIED:
        return mongo_error(exc, address, doing)
    return ChangeStreamsUnsupported(f"MongoDB at {address} cannot open a change stream: {reason}")


@dataclass(frozen=True)
class Change:
    """One new document's contribution."""

    values: list[object]
    """Raw values of the job's field (the `_id` itself for `_id` jobs)."""
    at: datetime | None
    """When it happened: the cluster time of the event, else the ObjectId's time."""
    token: Mapping[str, Any] | None = None
    """The change stream's resume token just after this change."""
    key: object = None
    """The document's `_id`."""
    deleted: bool = False
    """The document was deleted: its values (an `_id` job's key; another field's are not in
    the event) are orphans now, unless another document has them."""


def now_utc() -> datetime:
    return datetime.now(UTC)


def _id_time(value: object) -> datetime | None:
    return value.generation_time if isinstance(value, ObjectId) else None


class StreamFeed:
    """Insert events from a change stream, one at a time."""

    def __init__(
        self, source: MongoSource, max_await_s: float, stop: threading.Event, deletes: bool = False
    ) -> None:
        self.source, self.stop, self.deletes = source, stop, deletes
        self._await_ms = max(1, int(max_await_s * 1000))
        self._stream: CollectionChangeStream[dict[str, Any]] | None = None
        self._quick_empty = False

    def open(self, token: Mapping[str, Any] | None) -> None:
        """Open after ``token``, or from now when it is None."""
        self.close()
        try:
            self._stream = self.source.change_stream(token, self._await_ms, self.deletes)
        except OperationFailure as exc:
            doing = "opening a change stream" + (" at its checkpoint" if token else "")
            raise stream_error(exc, self.source.address, doing, token is not None) from None
        except PyMongoError as exc:
            raise mongo_error(exc, self.source.address, "opening a change stream") from None

    @property
    def token(self) -> Mapping[str, Any] | None:
        """Where the stream is: after the last change returned, or further on when idle."""
        return self._stream.resume_token if self._stream is not None else None

    def next(self) -> Change | None:
        """The next change, or None when there is none yet (the server may wait a little)."""
        assert self._stream is not None, "open() first"
        started = time.monotonic()
        try:
            event = self._stream.try_next()
        except OperationFailure as exc:
            raise stream_error(
                exc, self.source.address, "reading the change stream", True
            ) from None
        except PyMongoError as exc:
            raise mongo_error(exc, self.source.address, "reading the change stream") from None
        if event is None:
            self._quick_empty = time.monotonic() - started < _IDLE_PAUSE_S
            return None
        return self._change(event)

    def idle(self) -> None:
        """Nothing to do: pause before asking again if the server did not wait by itself."""
        if self._quick_empty:
            self.stop.wait(_IDLE_PAUSE_S)

    def _change(self, event: Mapping[str, Any]) -> Change:
        kind = event.get("operationType")
        if kind == "invalidate":
            raise StreamLost("change stream invalidated (collection dropped or renamed)")
        key = (event.get("documentKey") or {}).get("_id")
        if self.source.job.field == "_id":
            values: list[object] = [] if key is None else [key]
        else:
            values = field_values(event.get("fullDocument") or {}, self.source.job.field)
        cluster = event.get("clusterTime")
        at = cluster.as_datetime() if isinstance(cluster, Timestamp) else _id_time(key)
        deleted = kind == "delete"
        return Change(values=values, at=at, token=self.token, key=key, deleted=deleted)

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except PyMongoError:
                log.debug("closing a change stream failed", exc_info=True)
            self._stream = None


@dataclass
class Poller:
    """Documents with ObjectId `_id`s newer than a time, each reported once.

    On MongoDB the query is a range scan of the `_id` index. FerretDB does not push the range
    down: every poll reads the whole collection and filters it (fine for thousands of
    documents, costly for millions; see the README).
    """

    source: MongoSource
    window_s: float
    _recent: dict[ObjectId, datetime] = field(default_factory=dict)

    def poll(self, since: datetime) -> list[Change]:
        """New documents created after ``since - window_s``, not reported by an earlier poll."""
        floor = ObjectId.from_datetime(since - timedelta(seconds=self.window_s))
        fresh = [c for c in self.scan(floor) if c.key not in self._recent]
        # Forget what the window no longer reaches: memory stays one window of documents.
        for key in [k for k, at in self._recent.items() if at < floor.generation_time]:
            del self._recent[key]
        return fresh

    def remember(self, changes: list[Change]) -> None:
        """Called once ``changes`` are committed: later polls skip them."""
        for change in changes:
            if isinstance(change.key, ObjectId):
                self._recent[change.key] = change.key.generation_time

    def scan_since(self, moment: datetime) -> Iterator[Change]:
        """Every document whose ObjectId was made at ``moment`` or later."""
        return self.scan(ObjectId.from_datetime(moment))

    def scan(self, floor: ObjectId) -> Iterator[Change]:
        """Every document whose ObjectId is above ``floor``, reported or not."""
        field_name = self.source.job.field
        for doc in self.source.newer_than(floor):
            key = doc.get("_id")
            values = [key] if field_name == "_id" else field_values(doc, field_name)
            yield Change(values=values, at=_id_time(key), key=key)


_HEX = re.compile(r"[0-9A-Fa-f]+")


def decode_token(text: str | None) -> Mapping[str, Any] | None:
    """A stored resume token (:func:`encode_token`) as the driver takes it; ValueError when the
    text is not one."""
    if text is None:
        return None
    try:
        value = json_util.loads(text)
    except (ValueError, TypeError, BSONError) as exc:
        raise ValueError(f"stored resume token is not JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise ValueError("stored resume token is not a document")
    data = value.get("_data")
    # Servers write `_data` as hex (BinData before 4.0): anything else no server made, and
    # asking one about it gives no code that says so.
    if isinstance(data, str) and not _HEX.fullmatch(data):
        raise ValueError("stored resume token is not a resume token: `_data` is not hex")
    return value


def encode_token(token: Mapping[str, Any] | None) -> str | None:
    """A resume token as text that :func:`decode_token` reads back exactly."""
    if token is None:
        return None
    return json_util.dumps(token, json_options=json_util.CANONICAL_JSON_OPTIONS)
