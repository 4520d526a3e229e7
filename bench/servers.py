"""The MongoDB-compatible sources the benchmark reads, and its own mongo-java-server.

Two sources by default, at opposite ends:

- ``ferretdb``: FerretDB on SQLite (``dev/services up``, 127.0.0.1:27018). It decodes every whole
  stored document to answer even a projection on ``_id``: the source scan bounds every contender.
- ``mongo-java``: mongo-java-server, in memory. It hands out ``_id`` projections at several hundred
  thousand per second: the client's own work shows. The shared instance that ``dev/services``
  starts has a 1 GB heap and keeps an oplog (a second copy of every inserted document), which
  100,000 clusters do not fit in; so the benchmark starts a private one from the same launcher,
  with a heap sized to the data, on its own port, empties its oplog after each bulk insert, and
  stops it at the end. Being in memory, its data is loaded again each time it starts.

Any other server: ``--sources NAME=mongodb://host:port`` (a real MongoDB, say).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER_JAR = ROOT / ".local" / "bin" / "mongo-java-server-launcher.jar"
HOST = "127.0.0.1"
PRIVATE_PORT = int(os.environ.get("BENCH_MONGO_JAVA_PORT", "27029"))
DEFAULT_URIS = {
    "ferretdb": os.environ.get("BENCH_FERRETDB_URI", "mongodb://127.0.0.1:27018/"),
    "mongo-java": os.environ.get("BENCH_MONGO_JAVA_URI", ""),  # empty: start a private one
}
# Heap that mongo-java-server needs per document, measured with its oplog emptied (a 2 KB cluster
# becomes ~60 Java objects, ~38 KB); with room for the garbage collector.
HEAP_PER_DOC_KB = {"clusters": 56, "ids": 1}
HEAP_BASE_MB = 768


class Unavailable(RuntimeError):
    """A source that cannot be used on this machine; the message says why and what to do."""


@dataclass(frozen=True)
class Source:
    """One MongoDB-compatible server, by the name the results use."""

    name: str
    uri: str
    """Base URI (no database); empty for the private mongo-java-server, until it starts."""

    @property
    def private(self) -> bool:
        return not self.uri


def parse_sources(spec: str) -> list[Source]:
    """``ferretdb,mongo-java,mine=mongodb://host:27017`` → sources, in that order."""
    sources = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, uri = item.partition("=")
        if not uri and name not in DEFAULT_URIS:
            raise SystemExit(f"unknown source {name!r}: use ferretdb, mongo-java or NAME=URI")
        sources.append(Source(name, uri or DEFAULT_URIS[name]))
    return sources


def heap_mb(shape: str, n: int) -> int:
    return HEAP_BASE_MB + HEAP_PER_DOC_KB[shape] * n // 1024


def available_mb() -> int:
    import psutil

    return int(psutil.virtual_memory().available // (1 << 20))


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


class PrivateMongoJava:
    """A mongo-java-server of the benchmark's own, stopped (by its pid) when the block ends."""

    def __init__(self, heap: int, log: Path) -> None:
        self.heap, self.log = heap, log
        self.uri = f"mongodb://{HOST}:{PRIVATE_PORT}/"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrivateMongoJava:
        if not LAUNCHER_JAR.exists():
            raise Unavailable(
                "mongo-java-server launcher not built: run `dev/services up mongo-java`"
            )
        if _port_open(PRIVATE_PORT):
            raise Unavailable(f"port {PRIVATE_PORT} is taken (BENCH_MONGO_JAVA_PORT sets another)")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            argv = ["java", f"-Xmx{self.heap}m", "-jar", str(LAUNCHER_JAR), HOST, str(PRIVATE_PORT)]
            try:
                self._proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
            except FileNotFoundError:
                raise Unavailable("no `java` on PATH (Java 17 runs mongo-java-server)") from None
        self._wait_ready()
        return self

    def _wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise Unavailable(f"mongo-java-server exited at start; see {self.log}")
            with (
                contextlib.suppress(PyMongoError),
                mongo_client(self.uri, serverSelectionTimeoutMS=1000) as client,
            ):
                client.admin.command("ping")
                return
            time.sleep(0.5)
        raise Unavailable(f"mongo-java-server did not answer within {timeout_s:g}s")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def mongo_client(uri: str, **options: Any) -> MongoClient[dict[str, Any]]:
    return MongoClient(uri, **options)


def trim_oplog(client: MongoClient[dict[str, Any]]) -> None:
    """Empty mongo-java-server's in-memory oplog (only ever on the private instance)."""
    client["local"]["oplog.rs"].delete_many({})


def server_version(uri: str, name: str) -> dict[str, str]:
    """What the server says it is, plus what we know that it does not say."""
    with mongo_client(uri, serverSelectionTimeoutMS=5000) as client:
        info = client.admin.command("buildInfo")
    if any("ferretdb" in key.lower() for key in info):
        return {"flavour": "FerretDB", "version": _ferretdb_version()}
    if name == "mongo-java":
        return {"flavour": "mongo-java-server", "version": _mongo_java_version()}
    return {"flavour": "MongoDB", "version": str(info.get("version", "?"))}


def _ferretdb_version() -> str:
    go_mod = ROOT / "dev" / "ferretdb" / "go.mod"
    for line in go_mod.read_text().splitlines() if go_mod.exists() else []:
        if "github.com/FerretDB/FerretDB " in line:
            return line.split()[-1] + " (SQLite backend)"
    return "?"


def _mongo_java_version() -> str:
    pom = ROOT / "dev" / "mongo-java-server" / "pom.xml"
    text = pom.read_text() if pom.exists() else ""
    tag = "<mongo-java-server.version>"
    version = text.split(tag, 1)[1].split("<", 1)[0] if tag in text else "?"
    return f"{version} (memory backend)"
