"""Toxiproxy through its HTTP API (plain urllib; no client package): proxies of a test's own, on
free ports, between idsync and a server, with toxics that make the link slow, cut or silent.

The server runs from `dev/services up toxiproxy` (127.0.0.1:8474, or IDSYNC_TEST_TOXIPROXY_URL).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any
from urllib import request
from urllib.parse import urlsplit, urlunsplit

from tests.fault.servers import free_port

API = os.environ.get("IDSYNC_TEST_TOXIPROXY_URL", "http://127.0.0.1:8474")


def _call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = request.Request(API + path, data=data, method=method,
                          headers={"Content-Type": "application/json"})  # fmt: skip
    with request.urlopen(req, timeout=10) as answer:
        text = answer.read()
    return json.loads(text) if text else None


def reachable() -> str | None:
    """None when the API answers; else why not."""
    try:
        _call("GET", "/version")
    except OSError as exc:
        return str(exc)
    return None


class Proxy:
    """One proxy: ``listen`` (host:port) forwards to ``upstream``; removed by :meth:`delete`."""

    def __init__(self, upstream: str) -> None:
        self.name = f"idsync_{uuid.uuid4().hex[:10]}"
        self.listen = f"127.0.0.1:{free_port()}"
        _call("POST", "/proxies", {"name": self.name, "listen": self.listen,
                                   "upstream": upstream, "enabled": True})  # fmt: skip

    def url(self, url: str) -> str:
        """``url`` (a MongoDB URI or a SQL URL) with its host:port replaced by the proxy's."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{self.listen}" if userinfo else self.listen
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def add(self, kind: str, stream: str = "downstream", **attributes: float) -> str:
        """Add a toxic (``latency``, ``bandwidth``, ``timeout``, ``limit_data``, ``reset_peer``…);
        its name, for :meth:`remove`."""
        name = f"{kind}_{stream}_{uuid.uuid4().hex[:6]}"
        _call("POST", f"/proxies/{self.name}/toxics", {
            "name": name, "type": kind, "stream": stream, "toxicity": 1.0,
            "attributes": attributes,
        })  # fmt: skip
        return name

    def enable(self, enabled: bool) -> None:
        """Disabled, the proxy closes its connections and refuses new ones: a partition."""
        _call("POST", f"/proxies/{self.name}", {"enabled": enabled})

    def remove(self, toxic: str) -> None:
        _call("DELETE", f"/proxies/{self.name}/toxics/{toxic}")

    def delete(self) -> None:
        _call("DELETE", f"/proxies/{self.name}")
