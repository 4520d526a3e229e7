"""The watcher's parts that need no server: options, checkpoints, batches, health over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
from bson import Int64, ObjectId
from pymongo.errors import OperationFailure

from idsync.checks import parse_duration
from idsync.errors import ConfigError, TerminalError, TransientError
from idsync.ids import ColumnFit
from idsync.metrics import Metrics
from idsync.mongo.feeds import (
    Change,
    ChangeStreamsUnsupported,
    StreamLost,
    decode_token,
    encode_token,
    stream_error,
)
from idsync.mysql.dialect import watch_lock_name
from idsync.target import Checkpoint
from idsync.watch.health import Health, HealthServer
from idsync.watch.options import WatchOptions, parse_address
from idsync.watch.sink import PendingBatch


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("1h", 3600.0), ("1.5h", 5400.0),
     ("1d", 86400.0), ("200ms", 0.2)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "h", "1 hour", "-5s", "5x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_addresses() -> None:
    assert parse_address("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_address("[::1]:9464") == ("::1", 9464)
    assert parse_address(":9464") == ("0.0.0.0", 9464)
    for bad in ("9464", "host:", "host:99999", "a b:1"):
        with pytest.raises(ConfigError):
            parse_address(bad)


def test_options_are_checked() -> None:
    assert WatchOptions(http="127.0.0.1:0").http_address == ("127.0.0.1", 0)
    for bad in (
        {"poll_interval_s": 0},
        {"reconcile_every_s": 0.5},
        {"backoff_min_s": 5, "backoff_max_s": 1},
        {"poll_interval_s": 90},  # would be "stuck" between two polls
        {"http": "nowhere"},
        # Accepted once, then a crash after the first full pass (datetime and ObjectId range).
        {"poll_window_s": 2_000_000_000},
        {"poll_window_s": 1e12},
        {"poll_window_s": float("nan")},
        {"poll_window_s": float("inf")},
        {"reconcile_every_s": 1e12},
        {"checkpoint_every_s": float("nan")},
        {"stuck_after_s": float("inf")},
        {"backoff_max_s": 1e12},
        {"max_batch_wait_s": 1e12},
    ):
        with pytest.raises(ConfigError):
            WatchOptions(**bad)


def test_resume_tokens_survive_the_state_table() -> None:
    token = {"_data": "82656F1E2A000000012B0229296E04"}
    checkpoint = Checkpoint("change-stream", resume_token=encode_token(token))
    assert decode_token(checkpoint.resume_token) == token
    assert decode_token(None) is None
    with pytest.raises(ValueError, match="not JSON"):
        decode_token("{oops")
    with pytest.raises(ValueError, match="not a document"):
        decode_token("[1]")
    with pytest.raises(ValueError, match="not a resume token"):  # the server never made it
        decode_token('{"_data": "not a resume token"}')


def _refusal(code: int | None, name: str, labels: tuple[str, ...] = ()) -> OperationFailure:
    """A server's error reply, as pymongo raises it from the command's answer."""
    reply: dict[str, object] = {"ok": 0.0, "errmsg": f"{name} (as the server says)"}
    if code is not None:
        reply.update(code=code, codeName=name)
    if labels:
        reply["errorLabels"] = list(labels)
    return OperationFailure(str(reply["errmsg"]), code, reply)


@pytest.mark.parametrize("resuming", [True, False])
@pytest.mark.parametrize(
    ("code", "name", "labels", "kind"),
    [
        (286, "ChangeStreamHistoryLost", (), StreamLost),
        (280, "ChangeStreamFatalError", (), StreamLost),
        (260, "InvalidResumeToken", (), StreamLost),
        (136, "CappedPositionLost", (), StreamLost),
        (91, "ShutdownInProgress", (), TransientError),
        (189, "PrimarySteppedDown", (), TransientError),
        (262, "ExceededTimeLimit", (), TransientError),
        (43, "CursorNotFound", (), TransientError),
        (999, "SomethingNew", ("ResumableChangeStreamError",), TransientError),
        (18, "AuthenticationFailed", (), TerminalError),
        (13, "Unauthorized", (), TerminalError),
    ],
)
def test_only_a_lost_position_drops_the_resume_token(
    code: int, name: str, labels: tuple[str, ...], kind: type, resuming: bool
) -> None:
    """What a server's refusal to open (or read on) a change stream means: position gone (a
    gap pass, a new stream), try again with the same token, or stop."""
    error = stream_error(_refusal(code, name, labels), "db:27017", "opening", resuming)
    assert type(error) is kind, error
    assert name in str(error)


def test_an_unexplained_refusal_keeps_the_token() -> None:
    """No code says the position is gone: the token is kept, and the refusal is not retried."""
    error = stream_error(_refusal(None, "Unknown error"), "db:27017", "opening", resuming=True)
    assert type(error) is TerminalError
    fresh = stream_error(_refusal(40573, "Location40573"), "db:27017", "opening", False)
    assert type(fresh) is ChangeStreamsUnsupported  # no stream at all: polling can do


def test_lock_names_fit_the_server_limit() -> None:
    assert watch_lock_name("maas", "t.c", "job") == "idsync-watch:maas.t.c:job"
    assert len(watch_lock_name("d" * 64, "t" * 64 + ".c", "j" * 64)) <= 64


def test_pending_batch_encodes_like_a_full_pass() -> None:
    batch = PendingBatch(ColumnFit(max_chars=24, max_bytes=None, charset="utf8mb4"))
    oid = ObjectId()
    at = datetime(2030, 1, 1, tzinfo=UTC)
    raw: list[object] = [oid, Int64(7), 1.5, "x" * 30, oid]
    for value in raw:
        batch.add(Change(values=[value], at=at, token={"_data": "01"}, key=None))
    assert list(batch.texts) == [str(oid), "7"]  # each once, in order
    assert [reason for _text, reason in batch.rejected] == [
        "unsupported type: double",
        "too long for column: 30 characters > 24",
    ]
    assert (batch.seen, len(batch), batch.token) == (5, 5, {"_data": "01"})
    assert batch.oldest_at == batch.newest_at == at


def test_pending_batch_rejects_a_repeated_text_as_a_full_pass_does() -> None:
    fit = ColumnFit(max_chars=24, max_bytes=None, charset="utf8mb4")
    batch = PendingBatch(fit, unique=True)
    for value in (5, "5", Int64(5), "6", "6"):  # Int64(5) is int 5's document again
        batch.add(Change(values=[value], at=None, key=value))
    assert list(batch.texts) == ["5", "6"]
    assert batch.rejected == [("5", "another source id has the same text (e.g. int 5 and '5')")]
    values = PendingBatch(fit, unique=False)  # a field's values repeat across documents
    for value in (5, "5"):
        values.add(Change(values=[value], at=None))
    assert (list(values.texts), values.rejected) == (["5"], [])


def test_health_turns_503_when_stuck_and_serves_metrics() -> None:
    now = [0.0]
    health = Health(stuck_after_s=10, clock=lambda: now[0])
    metrics = Metrics("demo")
    metrics.set_mode("polling")
    metrics.inserted.inc(3)
    with HealthServer(("127.0.0.1", 0), health, metrics) as server:
        base = "http://{}:{}".format(*server.address)
        assert _get(base + "/healthz")[0] == 200
        now[0] = 11.0
        health.trouble("MongoDB unreachable")
        code, body = _get(base + "/healthz")
        assert code == 503
        assert json.loads(body) == {
            "status": "stuck",
            "mode": "starting",
            "seconds_since_progress": 11.0,
            "error": "MongoDB unreachable",
        }
        health.beat()
        assert _get(base + "/healthz")[0] == 200
        code, text = _get(base + "/metrics")
        assert code == 200
        assert 'idsync_ids_inserted_total{idsync_job="demo"} 3.0' in text
        assert 'idsync_mode{idsync_job="demo",idsync_mode="polling"} 1.0' in text


def test_health_turns_503_at_once_on_a_terminal_error() -> None:
    now = [0.0]
    health = Health(stuck_after_s=60, clock=lambda: now[0])
    health.trouble("MongoDB unreachable")  # may pass: healthy until stuck_after_s
    assert health.report()[0]
    now[0] = 1.0
    health.trouble("UPDATE command denied", terminal=True)  # will not pass by itself
    healthy, details = health.report()
    assert not healthy
    assert (details["status"], details["error"]) == ("failing", "UPDATE command denied")
    health.beat()
    assert health.report() == (True, {"status": "ok", "mode": "starting",
                                      "seconds_since_progress": 0.0})  # fmt: skip


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
