"""MongoDB side: stream the raw values of one field, keys only, never whole documents."""

from __future__ import annotations

import datetime
import difflib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

import pymongo
from bson import ObjectId
from pymongo import MongoClient
from pymongo.change_stream import CollectionChangeStream
from pymongo.errors import ConfigurationError, InvalidName, OperationFailure, PyMongoError

from idsync.config import Job, Settings
from idsync.errors import ConfigError, TransientError
from idsync.mongo.errors import (
    dns_failed,
    mongo_error,
    parse_checked,
    server_address,
    short_text,
)
from idsync.mongo.lookup import live_texts, object_id_twins
from idsync.mongo.raw import LENIENT, decode, documents, field_batch, holding, split_batch
from idsync.urls import ENCODE_HINT, scrub

log = logging.getLogger(__name__)


class ScanOrder(StrEnum):
    """How the source is walked."""

    ID_INDEX = "id-index"
    """Sorted on `_id` with the `_id` index hinted: on MongoDB a covered index scan that never
    touches a document, and a stable order to resume from."""
    NATURAL = "natural"
    """Unsorted, the server's own order: the only plan that streams on servers that sort in
    memory (FerretDB loads every matching document before the first batch of a sorted find).
    Chosen when the server's explain shows no index scan for the sorted one."""


@dataclass(frozen=True)
class ServerInfo:
    """What the source server says about itself."""

    version: str
    flavour: str
    """"mongodb" or "ferretdb"."""


class MongoSource:
    """Reads the distinct values of ``job.field`` from ``job.collection``."""

    def __init__(self, settings: Settings, job: Job, order: ScanOrder | None = None) -> None:
        self.job = job
        parsed = parse_checked(settings.mongo_uri)
        self.address = server_address(parsed)
        self._batch = settings.read_batch_size
        self._requested_order = order
        database = job.mongo_db or parsed["database"]
        if not database:
            raise ConfigError("no MongoDB database: name it in the URI path or pass --mongo-db")
        self.database = database
        self._client: MongoClient[dict[str, Any]] = self._connect(settings)
        try:
            self._coll = self._client[database][job.collection]
        except InvalidName as exc:
            self._client.close()
            raise ConfigError(f"invalid MongoDB database name: {exc}") from None
        self.order = order or ScanOrder.ID_INDEX
        self.flavour = "unknown"

    def _connect(self, settings: Settings) -> MongoClient[dict[str, Any]]:
        """The client, or a config error for what the URI asks that cannot be had."""
        timeout_ms = int(settings.connect_timeout_s * 1000)
        try:
            return MongoClient(
                settings.mongo_uri,
                appname="idsync",
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                socketTimeoutMS=int(settings.socket_timeout_s * 1000),
                uuidRepresentation="standard",
                retryReads=True,
            )
        except (ConfigurationError, ValueError) as exc:
            reason = scrub(short_text(exc), settings.mongo_uri)
            if dns_failed(exc):
                raise TransientError(
                    f"MongoDB unreachable at {self.address}: DNS lookup failed: {reason}"
                ) from None
            raise ConfigError(f"invalid MongoDB URI: {reason}; {ENCODE_HINT}") from None

    def __enter__(self) -> MongoSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def ping(self, require_collection: bool = True) -> ServerInfo:
        """Fail fast (within the connect timeout) when the server is not there, and with a
        :class:`ConfigError` when the job's collection does not exist (unless the job allows
        it, or ``require_collection`` is false)."""
        try:
            info = self._client.admin.command("buildInfo")
        except PyMongoError as exc:
            raise mongo_error(exc, self.address, "connecting") from None
        flavour = "ferretdb" if any("ferretdb" in key.lower() for key in info) else "mongodb"
        self.flavour = flavour
        if require_collection and not self.job.allow_missing_source:
            problem = self.missing_collection()
            if problem:
                raise ConfigError(f"{problem} (allow_missing_source = true in the job accepts it)")
        if self.job.field != "_id":
            self.order = ScanOrder.NATURAL  # what value_batches() reads a field's values in
        elif self._requested_order is None:
            self.order = self._planned_order()
        return ServerInfo(version=str(info.get("version", "?")), flavour=flavour)

    def missing_collection(self) -> str | None:
        """Why the job's collection cannot be its source, naming the nearest existing names; None
        when it exists. MongoDB creates collections lazily, so a misspelt one reads as empty."""
        try:
            names = self._coll.database.list_collection_names(authorizedCollections=True)
        except OperationFailure as exc:
            # A user may read a collection without being allowed to list them: not judged.
            log.warning("cannot list the collections of %s: %s", self.database, short_text(exc))
            return None
        except PyMongoError as exc:
            raise mongo_error(exc, self.address, "listing collections") from None
        wanted = self.job.collection
        if wanted in names:
            return None
        near = difflib.get_close_matches(wanted, names, n=3)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        if not names:
            hint = " (the database has no collections)"
        return f"no collection {wanted} in database {self.database}{hint}"

    def _planned_order(self) -> ScanOrder:
        """The `_id` index when the server's plan for the sorted scan walks an index; else its
        natural order. A server that cannot show such a plan sorts in memory after reading every
        document (FerretDB does; mongo-java-server has no explain): only a natural scan streams
        there, while MongoDB answers with a covered index scan that never reads a document."""
        return ScanOrder.ID_INDEX if self._walks_id_index({}) else ScanOrder.NATURAL

    def reads_ranges_by_index(self) -> bool:
        """Whether the server answers a range of `_id`s by walking that range of the index.
        Where it does not (FerretDB, mongo-java-server: no explain that shows one), each range
        query scans the whole collection: measured, a sixteenth costs a third (mongo-java-server)
        to two thirds (FerretDB) of a full scan."""
        return self._walks_id_index({"_id": {"$gte": ObjectId("0" * 24)}})

    def _walks_id_index(self, query: Mapping[str, Any]) -> bool:
        """Whether the server's plan for ``query``, sorted and hinted on `_id`, scans the index."""
        find = {"find": self.job.collection, "filter": query, "projection": {"_id": 1}}
        find |= {"sort": {"_id": 1}, "hint": {"_id": 1}}
        try:
            plan = self._coll.database.command("explain", find, verbosity="queryPlanner")
        except OperationFailure:
            return False
        except PyMongoError as exc:
            raise mongo_error(exc, self.address, "planning the scan") from None
        return _has_stage(plan, "IXSCAN")

    def estimated_count(self) -> int | None:
        """Documents in the collection by the server's metadata: for progress only."""
        if self.flavour == "ferretdb":
            return None  # FerretDB counts by reading every document: as slow as the scan itself
        try:
            return int(self._coll.estimated_document_count())
        except PyMongoError:
            return None

    def value_batches(self) -> Iterator[tuple[list[str], list[object]]]:
        """Every value of the field a batch at a time (array elements each): ObjectIds as their text
        (sliced out of the raw bytes, never decoded), every other value as it came; a value
        the driver cannot decode as :class:`~idsync.ids.Undecodable`, never an exception."""
        if self.job.field == "_id":
            yield from map(split_batch, self.id_batches({}))
            return
        path = self.job.field.split(".")
        query = {self.job.field: {"$exists": True}}
        for batch in self._raw_batches(query, {self.job.field: 1, "_id": 0}, ScanOrder.NATURAL):
            yield [], field_batch(batch, path)

    def ordered_id_batches(self) -> Iterator[tuple[list[str], list[object]]]:
        """The ObjectId `_id`s in ascending order, by the `_id` index (on MongoDB a range of it;
        on a server without index scans, sorted by the server)."""
        query = {"_id": {"$type": "objectId"}}
        return map(split_batch, self._raw_batches(query, {"_id": 1}, ScanOrder.ID_INDEX))

    def range_id_batches(
        self, low: str | None, high: str | None
    ) -> Iterator[tuple[list[str], list[object]]]:
        """The ObjectId `_id`s from ``low`` (included; None: the first) to ``high`` (excluded;
        None: the last), ascending by the `_id` index: one range of it on MongoDB. A bound that
        is an ObjectId matches only ObjectIds (MongoDB compares within a type)."""
        bounds = {"$gte": ObjectId(low or "0" * 24)}
        if high is not None:
            bounds["$lt"] = ObjectId(high)
        query = {"_id": bounds}
        return map(split_batch, self._raw_batches(query, {"_id": 1}, ScanOrder.ID_INDEX))

    def object_id_span(self) -> tuple[str, str] | None:
        """The smallest and the largest ObjectId `_id` (two reads of the `_id` index), or None
        when no `_id` is an ObjectId."""
        ends = []
        for direction in (pymongo.ASCENDING, pymongo.DESCENDING):
            try:
                found = self._coll.find_one(
                    {"_id": {"$type": "objectId"}}, {"_id": 1}, sort=[("_id", direction)]
                )
            except PyMongoError as exc:
                raise mongo_error(exc, self.address, f"reading {self.job.collection}") from None
            if found is None:
                return None
            ends.append(str(found["_id"]))
        return ends[0], ends[1]

    def other_id_batches(self) -> Iterator[tuple[list[str], list[object]]]:
        """Every `_id` that is not an ObjectId, in no order (on MongoDB the `_id` index's other
        ranges; few in practice)."""
        query = {"_id": {"$not": {"$type": "objectId"}}}
        return map(split_batch, self._raw_batches(query, {"_id": 1}, ScanOrder.NATURAL))

    def live(self, texts: Sequence[str]) -> set[str]:
        """Which of ``texts`` some document's field has now (:func:`~idsync.mongo.lookup.
        live_texts`): an orphan re-verified at the moment it is deleted."""
        try:
            return live_texts(self._coll, self.job.field, texts)
        except PyMongoError as exc:
            raise mongo_error(exc, self.address, f"looking up {self.job.collection}") from None

    def object_id_twins(self, texts: Sequence[str]) -> set[str]:
        """Which of ``texts`` is also an ObjectId `_id` (:func:`~idsync.mongo.lookup.
        object_id_twins`)."""
        try:
            return object_id_twins(self._coll, texts)
        except PyMongoError as exc:
            raise mongo_error(exc, self.address, f"looking up {self.job.collection}") from None

    def sample(self, limit: int) -> list[object]:
        """Up to ``limit`` values of the field from the first documents (for diagnosis)."""
        path = self.job.field.split(".")
        batches = self._raw_batches({}, {self.job.field: 1}, ScanOrder.NATURAL, limit)
        return [value for batch in batches for value in field_batch(batch, path)]

    def supports_change_streams(self) -> bool:
        """Whether the server opens a change stream on the collection (replica sets do)."""
        try:
            with self._coll.watch(max_await_time_ms=50) as stream:
                stream.try_next()
        except OperationFailure:
            return False
        except PyMongoError as exc:
            raise mongo_error(exc, self.address, "opening a change stream") from None
        return True

    def server_time(self) -> datetime.datetime | None:
        """The server's clock (``hello.localTime``, else ``isMaster``'s), if it reports one."""
        moment = None
        # Servers of the MongoDB 4.4 wire (mongo-java-server) have no `hello`; `isMaster` is its
        # older name.
        for command in ("hello", "isMaster"):
            try:
                moment = self._client.admin.command(command).get("localTime")
                break
            except OperationFailure:
                continue
            except PyMongoError as exc:
                raise mongo_error(exc, self.address, "asking the time") from None
        if not isinstance(moment, datetime.datetime):
            return None
        return moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None else moment

    def change_stream(
        self, resume_after: Mapping[str, Any] | None, max_await_ms: int, deletes: bool = False
    ) -> CollectionChangeStream[dict[str, Any]]:
        """Events that bring new values, after ``resume_after`` or from now, trimmed to what
        the job reads. Driver errors are left to the caller, which alone can tell a lost resume
        token from a server without change streams."""
        kinds = ["insert", "invalidate", *(["delete"] if deletes else [])]
        keep: dict[str, Any] = {"operationType": 1, "clusterTime": 1, "documentKey": 1}
        if self.job.field != "_id":
            # A replacement can bring new values of a field, never a new `_id`.
            kinds.append("replace")
            keep[f"fullDocument.{self.job.field}"] = 1
        pipeline: list[dict[str, Any]] = [
            {"$match": {"operationType": {"$in": kinds}}},
            {"$project": keep},
        ]
        # Events are decoded leniently: a value the driver cannot decode comes as a string with
        # its bad bytes escaped or a date in milliseconds, both rejected by the encoding,
        # instead of an error that would end the stream at that event on every restart.
        coll = self._coll.with_options(codec_options=LENIENT)
        return coll.watch(pipeline, resume_after=resume_after, max_await_time_ms=max_await_ms)

    def newer_than(self, floor: ObjectId) -> Iterator[dict[str, Any]]:
        """Documents whose `_id` is an ObjectId above ``floor`` (so created after its time),
        with `_id` and the job's field only; a field the driver cannot decode holds an
        :class:`Undecodable` value instead, so that the document is rejected, not fatal."""
        field = self.job.field
        projection = {"_id": 1} if field == "_id" else {"_id": 1, field: 1}
        query = {"_id": {"$gt": floor}}
        for batch in self._raw_batches(query, projection, ScanOrder.NATURAL):
            for raw in documents(batch):
                decoded = decode(raw)
                yield decoded if isinstance(decoded, dict) else holding(raw, field, decoded)

    def id_batches(self, query: Mapping[str, Any]) -> Iterator[bytes]:
        """The raw BSON of the ``{_id}`` documents matching ``query``, one ``bytes`` per batch
        (documents back to back), in the scan order: for callers that count what they read or
        decode ids faster than whole documents are decoded."""
        return self._raw_batches(query, {"_id": 1}, self.order)

    def _raw_batches(
        self,
        query: Mapping[str, Any],
        projection: Mapping[str, Any],
        order: ScanOrder,
        limit: int = 0,
    ) -> Iterator[bytes]:
        try:
            cursor = self._coll.find_raw_batches(
                query, projection, batch_size=self._batch, limit=limit
            )
            if order is ScanOrder.ID_INDEX:
                cursor = cursor.sort("_id", pymongo.ASCENDING).hint([("_id", pymongo.ASCENDING)])
            with cursor:
                yield from cursor
        except PyMongoError as exc:
            raise mongo_error(exc, self.address, f"reading {self.job.collection}") from None

    def aggregate(self, pipeline: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The results of an aggregation on the collection, streamed. A server that lacks a
        stage or operator raises :class:`TerminalError` (it refused)."""
        try:
            with self._coll.aggregate(pipeline, batchSize=self._batch) as cursor:
                yield from cursor
        except PyMongoError as exc:
            raise mongo_error(exc, self.address, f"aggregating {self.job.collection}") from None


def _has_stage(node: object, stage: str) -> bool:
    """Whether an explain output names ``stage`` anywhere (classic, slot-based or sharded)."""
    if isinstance(node, Mapping):
        return node.get("stage") == stage or any(_has_stage(v, stage) for v in node.values())
    if isinstance(node, list):
        return any(_has_stage(item, stage) for item in node)
    return False
