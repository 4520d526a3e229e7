"""Private, killable servers for fault tests: a MariaDB and a FerretDB of the test's own.

The shared dev servers stay untouched: each fault test starts its own processes on free ports
with data in its tmp_path, and may kill -9, freeze (SIGSTOP) or restart them at will.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import MySQLdb
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[2]
FERRETDB_BIN = ROOT / ".local" / "bin" / "ferretdb-launcher"


def _user() -> str:
    return os.getenv("USER") or "root"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not come up: {exc}") from exc
            time.sleep(0.2)


@dataclass
class Server:
    """A process we started; ``start()`` again reuses its data directory."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        log = (self.workdir / "server.log").open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log, start_new_session=True)
        _wait(self.ready, type(self).__name__)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


class PrivateMariaDB(Server):
    """mariadbd with its own data directory; user idsync/idsync; database maas."""

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    def url(self, password: str = "idsync", user: str = "idsync") -> str:
        return f"mysql://{user}:{password}@127.0.0.1:{self.port}/maas"

    def start(self) -> None:
        if not self.datadir.exists():
            subprocess.run(
                ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                 f"--user={_user()}", "--auth-root-authentication-method=normal",
                 "--skip-test-db"],
                check=True, capture_output=True,
            )  # fmt: skip
            super().start()
            self.root_sql(
                "CREATE DATABASE maas CHARACTER SET utf8mb4",
                "CREATE USER 'idsync'@'localhost' IDENTIFIED BY 'idsync'",
                "CREATE USER 'idsync'@'127.0.0.1' IDENTIFIED BY 'idsync'",
                "GRANT ALL ON *.* TO 'idsync'@'localhost' WITH GRANT OPTION",
                "GRANT ALL ON *.* TO 'idsync'@'127.0.0.1' WITH GRANT OPTION",
            )
            return
        super().start()

    def command(self) -> list[str]:
        return [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults",
            f"--datadir={self.datadir}", f"--port={self.port}", "--bind-address=127.0.0.1",
            f"--socket={self.workdir / 'sock'}", f"--pid-file={self.workdir / 'pid'}",
            f"--user={_user()}", "--skip-log-bin",
            "--character-set-server=utf8mb4", "--innodb-buffer-pool-size=32M",
        ]  # fmt: skip

    def ready(self) -> None:
        self.root_connect().close()

    def root_connect(self) -> Any:
        return MySQLdb.connect(
            unix_socket=str(self.workdir / "sock"), user="root", autocommit=True, connect_timeout=2
        )

    def root_sql(self, *statements: str) -> list[Any]:
        conn = self.root_connect()
        try:
            cur = conn.cursor()
            rows: list[Any] = []
            for statement in statements:
                cur.execute(statement)
                rows = list(cur.fetchall())
            return rows
        finally:
            conn.close()


class PrivateFerretDB(Server):
    """FerretDB (SQLite) from the launcher that `dev/services up` builds."""

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/maas"

    def command(self) -> list[str]:
        return [
            str(FERRETDB_BIN), "-listen-addr", f"127.0.0.1:{self.port}",
            "-sqlite-dir", str(self.workdir / "data"), "-log-level", "warn",
        ]  # fmt: skip

    def ready(self) -> None:
        client: MongoClient[dict[str, Any]] = MongoClient(self.uri, serverSelectionTimeoutMS=1000)
        with client:
            client.admin.command("ping")
