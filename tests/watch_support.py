"""Helpers for the watch tests: the daemon as a real process, HTTP probes, a private
mongo-java-server to kill and restart, and waiting for conditions (never for a set time)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo import MongoClient
from pymongo.collection import Collection

ROOT = Path(__file__).resolve().parent.parent
MONGO_JAVA_JAR = ROOT / ".local" / "bin" / "mongo-java-server-launcher.jar"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; the deadline is generous, only a hang trips it."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str) -> tuple[int, str]:
    """(status, body); (0, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def metric(text: str, name: str) -> float | None:
    """The value of the first sample named ``name`` (labels ignored) in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


class Daemon:
    """`idsync watch` in a process of its own; its output goes to files, read at will."""

    def __init__(self, workdir: Path, mongo_uri: str, mysql_url: str, args: Sequence[str]) -> None:
        self.workdir, self.args = workdir, list(args)
        self.env = {**os.environ, "IDSYNC_MONGO_URI": mongo_uri, "IDSYNC_MYSQL_URL": mysql_url}
        self.env.pop("IDSYNC_CONFIG", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> Daemon:
        self.runs += 1
        out = (self.workdir / f"watch-{self.runs}.out").open("wb")
        err = (self.workdir / f"watch-{self.runs}.err").open("wb")
        with out, err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "idsync", "watch", *self.args],
                env=self.env, stdout=out, stderr=err, start_new_session=True,
            )  # fmt: skip
        return self

    @property
    def stderr(self) -> str:
        return (self.workdir / f"watch-{self.runs}.err").read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return (self.workdir / f"watch-{self.runs}.out").read_text(errors="replace")

    def send(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


class PrivateMongoJava:
    """A mongo-java-server of the test's own, on a free port: restart it without disturbing
    anyone else's. In memory, so a restart starts empty."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> None:
        log = (self.workdir / "mongo-java-server.log").open("ab")
        with log:
            self.proc = subprocess.Popen(
                ["java", "-Xmx256m", "-jar", str(MONGO_JAVA_JAR), "127.0.0.1", str(self.port)],
                stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        client: MongoClient[dict[str, Any]] = MongoClient(self.uri, serverSelectionTimeoutMS=500)
        with client:

            def answers() -> bool:
                try:
                    client.admin.command("ping")
                except Exception:
                    return False
                return True

            wait_until(answers, "the private mongo-java-server", timeout=90)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


class Writer:
    """Inserts ``total`` small documents in a thread, a few at a time, as an application would."""

    def __init__(self, coll: Collection[dict[str, Any]], total: int, chunk: int = 10) -> None:
        self.coll, self.total, self.chunk = coll, total, chunk
        self.ids: list[ObjectId] = []
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Writer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for chunk in self._chunks():
                self.coll.insert_many([{"_id": oid} for oid in chunk])
                self.ids.extend(chunk)
                time.sleep(0.005)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def _chunks(self) -> Iterator[list[ObjectId]]:
        left = self.total
        while left > 0:
            size = min(self.chunk, left)
            left -= size
            yield [ObjectId() for _ in range(size)]

    def join(self, timeout: float = 120.0) -> list[str]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the writer did not finish"
        assert self.error is None, f"the writer failed: {self.error!r}"
        return sorted(str(oid) for oid in self.ids)
