"""A real HTTP server on 127.0.0.1 for the service client tests.

Each path answers from a script of replies (the last one repeats): statuses,
bodies, headers, a delay before answering, headers or a body sent in parts
with a pause before each, or a dropped connection. Every request is recorded with its
headers, body, arrival time and the client's port (one per connection); the
bytes of body written are counted per path.

Fixtures: ``server`` and ``other_server`` (another origin), and ``configure`` /
``catalog``, a ``ServiceClient("catalog")`` pointed at ``server``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from django_microkit.client import ServiceClient


@dataclass(frozen=True)
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    #: The body in parts (instead of ``body``), each after ``pause`` seconds.
    parts: tuple[bytes, ...] = ()
    pause: float = 0.0
    #: Seconds before each header line after the status line (0: all at once).
    header_pause: float = 0.0

    def encoded(self) -> tuple[tuple[bytes, ...], dict[str, str]]:
        headers = dict(self.headers)
        if self.parts:
            return self.parts, headers
        if self.body is not None:
            return (self.body,), headers
        if self.json is None:
            return (), headers
        headers.setdefault("Content-Type", "application/json")
        return (json.dumps(self.json).encode(),), headers


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    header_items: list[tuple[str, str]]
    body: bytes
    at: float
    port: int

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.header_items if k.lower() == name.lower()]


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scripts: dict[str, list[Reply]] = {}
        self.received: list[Received] = []
        self.written: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def script(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.scripts[path] = list(replies)

    def next_reply(self, path: str) -> Reply:
        with self.lock:
            replies = self.scripts.get(path)
            if not replies:
                return Reply(404, {"detail": "not scripted"})
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def hits(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r
                for r in self.received
                if path is None or urlsplit(r.path).path == path
            ]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.received.append(
                Received(
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    time.monotonic(),
                    self.client_address[1],
                )
            )
        path = urlsplit(self.path).path
        reply = self.server.next_reply(path)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            return
        parts, headers = reply.encoded()
        try:
            self.send_response(reply.status)
            for name, value in headers.items():
                if reply.header_pause:
                    self.flush_headers()
                    time.sleep(reply.header_pause)
                self.send_header(name, value)
            if "Content-Length" not in headers:  # a wrong one: a body cut short
                self.send_header("Content-Length", str(sum(map(len, parts))))
            self.end_headers()
            for part in parts if self.command != "HEAD" else ():
                time.sleep(reply.pause)
                self.wfile.write(part)
                self.wfile.flush()
                with self.server.lock:
                    written = self.server.written
                    written[path] = written.get(path, 0) + len(part)
        except OSError:  # the client gave up (timeout): nothing to answer
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


@pytest.fixture(name="server")
def server_fixture() -> Iterator[ScriptedServer]:
    yield from _running()


@pytest.fixture(name="other_server")
def other_server_fixture() -> Iterator[ScriptedServer]:
    """A second server: another origin (another port)."""
    yield from _running()


def _running() -> Iterator[ScriptedServer]:
    httpd = ScriptedServer()
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


#: The catalog entry of the client tests, before their own overrides.
BASE_ENTRY: dict[str, Any] = {
    "TIMEOUT": (0.5, 0.5),
    "RETRIES": 2,
    "BACKOFF": 0.02,
    "BACKOFF_MAX": 0.05,
    "DEADLINE": 5,
    "BREAKER": {"FAILURES": 100},
}


@pytest.fixture(name="configure")
def configure_fixture(server: ScriptedServer, settings: Any) -> Any:
    """Point MICROKIT["SERVICES"]["catalog"] at the server, with overrides."""

    def apply(**entry: Any) -> ServiceClient:
        settings.MICROKIT = {
            "SERVICE_NAME": "orders",
            "SERVICE_VERSION": "2.1.0",
            "SERVICES": {"catalog": {"BASE_URL": server.url, **BASE_ENTRY, **entry}},
        }
        return ServiceClient("catalog")

    return apply


@pytest.fixture(name="catalog")
def catalog_fixture(configure: Any) -> ServiceClient:
    client: ServiceClient = configure()
    return client
