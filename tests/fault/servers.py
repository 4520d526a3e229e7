"""Private, killable servers for fault tests: a MariaDB, a PostgreSQL and a FerretDB of the
test's own.

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
import psycopg
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

    label = "MySQL"  # as idsync's messages name the server

    def ids(self) -> list[str]:
        """The ids table's values, sorted, duplicates kept."""
        return sorted(row[0] for row in self.root_sql("SELECT cluster_id FROM maas.cm_cluster_id"))

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


PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_OS_USER = "idsync-pg"  # initdb and postgres refuse root; `dev/services` makes this user


class PrivatePostgres(Server):
    """A PostgreSQL cluster of the test's own; user idsync/idsync; database maas.

    Run as the system user `dev/services` made when the tests run as root (the data directory
    is then under `.local/`, which that user may reach, not in the test's root-only tmp_path).
    """

    label = "PostgreSQL"

    def ids(self) -> list[str]:
        rows = self.superuser_sql("SELECT cluster_id FROM cm_cluster_id", database="maas")
        return sorted(str(v) for (v,) in rows)

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    def url(self) -> str:
        return f"postgresql://idsync:idsync@127.0.0.1:{self.port}/maas"

    def _as_owner(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        user = PG_OS_USER
        return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]

    def start(self) -> None:
        if self.datadir.exists():
            super().start()
            return
        if os.geteuid() == 0:
            shutil.chown(self.workdir, PG_OS_USER, PG_OS_USER)
        subprocess.run(
            [*self._as_owner(), str(PG_BIN / "initdb"), "-D", str(self.datadir), "-U", "postgres",
             "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256",
             "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        super().start()
        self.superuser_sql(
            "CREATE ROLE idsync LOGIN SUPERUSER PASSWORD 'idsync'",
            "CREATE DATABASE maas OWNER idsync",
        )

    def command(self) -> list[str]:
        return [
            *self._as_owner(), str(PG_BIN / "postgres"), "-D", str(self.datadir),
            "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
            "-c", f"unix_socket_directories={self.workdir}", "-c", "shared_buffers=16MB",
        ]  # fmt: skip

    def ready(self) -> None:
        self.superuser_sql("SELECT 1")

    def superuser_sql(self, *statements: str, database: str = "postgres") -> list[Any]:
        conninfo = f"host={self.workdir} port={self.port} user=postgres dbname={database}"
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=2) as conn:
            rows: list[Any] = []
            for statement in statements:
                cur = conn.execute(statement)
                rows = list(cur.fetchall()) if cur.description else []
            return rows

    def kill9(self) -> None:
        """The whole server at once, postmaster and backends, as a crash takes it."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        super().stop()  # SIGTERM: PostgreSQL's smart shutdown, waiting for the tests' sessions
