"""`/healthz` and `/metrics` over HTTP, served from a thread while the watcher works.

The watcher only *reports* progress (:meth:`Health.beat`); the HTTP thread judges it. So a
watcher blocked on a dead server, or pausing between reconnection attempts, still gets an
answer out: 503, with the last error, once it has made no progress for ``stuck_after_s``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from idsync.errors import ConfigError
from idsync.metrics import CONTENT_TYPE, Metrics
from idsync.urls import redact

log = logging.getLogger(__name__)


class Health:
    """Whether the watcher is following: written by it, read by the HTTP thread."""

    def __init__(
        self,
        stuck_after_s: float,
        clock: Callable[[], float] = time.monotonic,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.stuck_after_s = stuck_after_s
        self._secrets = secrets
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat = clock()  # starting counts as progress, for stuck_after_s
        self._mode = "starting"
        self._error: str | None = None
        self._failing = False

    def beat(self) -> None:
        """Progress was made: a change read, a poll answered, a batch committed."""
        with self._lock:
            self._last_beat = self._clock()
            self._error, self._failing = None, False

    def trouble(self, error: str, terminal: bool = False) -> None:
        """Something failed; shown by `/healthz` until the next beat. A ``terminal`` error (one
        that trying again will not fix: access denied, a table gone) makes it 503 at once."""
        error = redact(error, self._secrets)  # /healthz may be open to more than its operators
        with self._lock:
            self._error, self._failing = error, terminal

    def set_mode(self, mode: str) -> None:
        with self._lock:
            self._mode = mode

    def report(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details) as `/healthz` shows them."""
        with self._lock:
            idle = self._clock() - self._last_beat
            healthy = idle <= self.stuck_after_s and not self._failing
            status = "failing" if self._failing else "ok" if healthy else "stuck"
            details: dict[str, Any] = {
                "status": status,
                "mode": self._mode,
                "seconds_since_progress": round(idle, 3),
            }
            if self._error:
                details["error"] = self._error
        return healthy, details


def _handler(health: Health, metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "idsync"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                healthy, details = health.report()
                body = (json.dumps(details) + "\n").encode()
                self._send(200 if healthy else 503, "application/json", body)
            elif path == "/metrics":
                metrics.healthy.set(1.0 if health.report()[0] else 0.0)  # as of this scrape
                self._send(200, CONTENT_TYPE, metrics.render())
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: /healthz, /metrics\n")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # The base class writes every request to stderr; the library never prints.
            log.debug("http: " + format, *args)

    return Handler


class HealthServer:
    """A small threaded HTTP server; ``close()`` stops it and frees the port."""

    def __init__(self, address: tuple[str, int], health: Health, metrics: Metrics) -> None:
        try:
            self._server = ThreadingHTTPServer(address, _handler(health, metrics))
        except OSError as exc:
            raise ConfigError(f"cannot serve HTTP on {address[0]}:{address[1]}: {exc}") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="idsync-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port when 0 was asked for)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
