"""Real server processes for the end-to-end suite.

Each example service runs as it would in production: catalog under gunicorn
(WSGI, sync workers), orders under uvicorn (ASGI). Every process gets its own
process group, so stopping it also stops its workers, and its stdout/stderr go
to a log file the tests read.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_service"
MANAGE = EXAMPLE / "manage.py"


def _development_key(name: str) -> str:
    """A development-only key published in ``common_settings.py``."""
    text = (EXAMPLE / "common_settings.py").read_text()
    start = text.index(f'{name} = """\\\n') + len(f'{name} = """\\\n')
    return text[start : text.index('"""', start)]


DEV_ORDERS_SIGNING_KEY = _development_key("DEV_ORDERS_SIGNING_KEY")
DEV_ORDERS_PUBLIC_KEY = _development_key("DEV_ORDERS_PUBLIC_KEY")

Server = Literal["gunicorn", "uvicorn"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def closed_port() -> int:
    """A port nothing listens on (connections are refused)."""
    return free_port()


def base_env() -> dict[str, str]:
    """The environment every service process starts from: this checkout's
    package first on the path, no settings inherited from the test process."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"}
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(EXAMPLE)])
    env["PYTHONUNBUFFERED"] = "1"
    # Stopped and restarted often here: no drain before each stop.
    env["DRAIN_DELAY"] = "0"
    env.pop("PYTHONDEVMODE", None)
    return env


def manage(
    service: str, env: Mapping[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), *args, f"--settings={service}.settings"],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=EXAMPLE,
        timeout=timeout,
        check=False,
    )


def _start_logged(
    command: list[str], env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``command`` in the example's folder, in a process group of its
    own, its stdout and stderr appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=EXAMPLE,
            start_new_session=True,
        )


@dataclass
class ServiceProcess:
    """One running service: its name, URL, process and log file."""

    name: str
    service: str
    server: Server
    port: int
    env: dict[str, str]
    log_path: Path
    workers: int = 2
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        module = "wsgi" if self.server == "gunicorn" else "asgi"
        app = f"{self.service}.{module}:application"
        if self.server == "gunicorn":
            return [
                sys.executable,
                "-m",
                "gunicorn",
                # Metrics of both workers in every scrape, drain on SIGTERM.
                "--config",
                "python:django_microkit.gunicorn",
                "--chdir",
                str(EXAMPLE),
                "--worker-class",
                "sync",
                "--workers",
                str(self.workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--graceful-timeout",
                "5",
                "--timeout",
                "30",
                app,
            ]
        # The service writes its own access line (one JSON line per request,
        # the path escaped), so uvicorn's raw one is turned off.
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(EXAMPLE),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--lifespan",
            "off",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
            app,
        ]

    def start(self, *, wait_ready: bool = True, timeout: float = 60) -> None:
        assert self.process is None or self.process.poll() is not None
        self.process = _start_logged(self.command(), self.env, self.log_path)
        self.wait(
            path="/health/ready" if wait_ready else "/health/live", timeout=timeout
        )

    def wait(self, *, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n"
                    + self.log_text()[-4000:]
                )
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} did not answer {path} within {timeout} s:\n"
                    + self.log_text()[-4000:]
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to the process group, SIGKILL if it is still there after
        ``timeout`` seconds."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
        # Workers left behind in the group (none expected) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def log_text(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "backslashreplace")

    def log_bytes(self) -> bytes:
        return self.log_path.read_bytes()


@dataclass
class WorkerProcess:
    """One service's events worker, relaying its outbox too
    (``manage.py microkit_consume --relay``), as ``make run`` starts it. It is
    up once it touched its health file, which it does after declaring its
    queue, so events published from then on reach it."""

    name: str
    service: str
    env: dict[str, str]
    log_path: Path
    health_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def command(self) -> list[str]:
        return [
            sys.executable,
            str(MANAGE),
            "microkit_consume",
            "--relay",
            "--health-file",
            str(self.health_file),
            f"--settings={self.service}.settings",
        ]

    def start(self, timeout: float = 60) -> None:
        assert self.process is None or self.process.poll() is not None
        self.health_file.unlink(missing_ok=True)
        self.process = _start_logged(self.command(), self.env, self.log_path)
        deadline = time.monotonic() + timeout
        while not self.health_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n"
                    + self.log_text()[-4000:]
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} did not start within {timeout} s:\n"
                    + self.log_text()[-4000:]
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: the worker stops wherever it is, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM (the worker finishes the event in hand and exits), SIGKILL
        after ``timeout`` seconds; the exit status, or ``None`` if killed."""
        process = self.process
        if process is None:
            return None
        if process.poll() is not None:
            return process.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def log_text(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "backslashreplace")


def database_url(base: str | None, name: str, tmp: Path) -> str:
    """The URL of a service's own database: ``name`` on the server of ``base``
    (PostgreSQL), or a SQLite file in ``tmp``."""
    if not base:
        return f"sqlite:///{tmp / f'{name}.sqlite3'}"
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class FaultProxy:
    """A TCP proxy in front of a service that the tests can break.

    ``forward``: bytes go to the target and back. ``hang``: connections are
    accepted and never answered. ``down``: nothing listens on the port
    (connections are refused).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.mode: Literal["forward", "hang", "down"] = "forward"
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        with self._lock:
            self._listener = listener

    def set_mode(self, mode: Literal["forward", "hang", "down"]) -> None:
        with self._lock:
            previous, self.mode = self.mode, mode
            listener = self._listener
            if mode == "down" and listener is not None:
                listener.close()
                self._listener = None
            for held in self._held:
                held.close()
            self._held.clear()
        if previous == "down" and mode != "down":
            self._listen()

    def close(self) -> None:
        self._stop.set()
        self.set_mode("down")
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                time.sleep(0.05)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                mode = self.mode
                if mode == "hang":
                    self._held.append(client)
                    continue
            if mode == "down":
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), 5)
        except OSError:
            client.close()
            return
        sockets = [client, upstream]
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()


@contextlib.contextmanager
def running(*processes: ServiceProcess) -> Iterator[None]:
    """Stop every process on the way out, whatever happened."""
    try:
        yield
    finally:
        for process in processes:
            process.stop()
