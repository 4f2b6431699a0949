"""django_microkit.gunicorn under a real gunicorn on 127.0.0.1: the counts of
two workers add up in every scrape, and SIGTERM drains before the stop."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent


# gunicorn 25+ opens a control socket in the home directory unless told not to:
# test servers run side by side.
_NO_CONTROL_SOCKET = (
    ["--no-control-socket"]
    if any(
        setting.name == "control_socket"
        for setting in importlib.import_module("gunicorn.config").KNOWN_SETTINGS
    )
    else []
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Gunicorn:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path):
        self.process, self.port, self.log = process, port, log
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def wait_live(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            with contextlib.suppress(requests.RequestException):
                if self.get("/health/live").status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError("gunicorn did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@contextlib.contextmanager
def running_gunicorn(
    tmp_path: Path, *options: str, env: dict[str, str] | None = None
) -> Iterator[Gunicorn]:
    port, log = _free_port(), tmp_path / "gunicorn.log"
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR"}
    }
    environment.update(PYTHONPATH=str(ROOT), **(env or {}))
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:django_microkit.gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "15",
                "--access-logfile",
                "-",
                "--access-logformat",
                "pid=%(p)s path=%(U)s",
                *_NO_CONTROL_SOCKET,
                *options,
                "tests.gunicorn_service:application",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=ROOT,
            start_new_session=True,
        )
    server = Gunicorn(process, port, log)
    try:
        server.wait_live()
        yield server
    finally:
        server.stop()


def _count(text: str, route: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "http_server_request_duration_seconds_count"
                and sample.labels["http_route"] == route
            ):
                return sample.value
    return 0.0


def test_the_counts_of_two_workers_add_up(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    # A previous run's file: it must not be added to this run's counts.
    (directory / "counter_1.db").write_bytes(b"left over from a previous run")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    with running_gunicorn(tmp_path, "--workers", "2", env=env) as server:
        sent = 40
        with ThreadPoolExecutor(4) as pool:
            statuses = list(
                pool.map(
                    lambda _: server.get("/slow/?seconds=0.05").status_code, range(sent)
                )
            )
        assert statuses == [200] * sent
        log = server.log.read_text()
        pids = {line.split()[0] for line in log.splitlines() if "path=/slow/" in line}
        assert len(pids) == 2, log
        # Each scrape is answered by one worker or the other: all see every count.
        for _ in range(6):
            response = server.get("/metrics")
            assert response.status_code == 200
            assert _count(response.text, "slow/") == sent
        assert not (directory / "counter_1.db").exists()


def test_without_a_directory_two_workers_get_one_of_their_own(tmp_path: Path) -> None:
    with running_gunicorn(tmp_path, "--workers", "2") as server:
        for _ in range(10):
            assert server.get("/hello/").status_code == 200
        for _ in range(4):
            assert _count(server.get("/metrics").text, "hello/") == 10
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=30)
    made = [
        line for line in server.log.read_text().splitlines() if "Metrics of" in line
    ]
    (line,) = made
    assert not Path(line.rsplit(" ", 1)[1]).exists()


@pytest.mark.parametrize("to_group", [False, True], ids=["master", "process-group"])
def test_sigterm_drains_then_stops(tmp_path: Path, to_group: bool) -> None:
    delay = 2.0
    env = {"MICROKIT_TEST_DRAIN_DELAY": str(delay)}
    options = ("--workers", "1", "--worker-class", "gthread", "--threads", "4")
    with running_gunicorn(tmp_path, *options, env=env) as server:
        assert server.get("/health/ready").status_code == 200
        in_flight: list[int] = []
        slow = threading.Thread(
            target=lambda: in_flight.append(server.get("/slow/?seconds=3").status_code)
        )
        slow.start()
        time.sleep(0.3)
        signalled = time.monotonic()
        # Kubernetes signals the master; systemd, every process of the group.
        (os.killpg if to_group else os.kill)(server.process.pid, signal.SIGTERM)
        time.sleep(0.2)
        # At once: readiness fails, liveness does not, requests are served.
        ready = server.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["drain"][0]["output"] == "draining"
        assert server.get("/health/live").status_code == 200
        assert server.get("/hello/").status_code == 200
        assert time.monotonic() - signalled < delay
        server.process.wait(timeout=30)
        stopped = time.monotonic() - signalled
        slow.join(timeout=10)
        assert in_flight == [200]
        # Not before the delay nor before the request in flight ended.
        assert stopped >= 2.7, stopped
        assert stopped < delay + 10, stopped
        with pytest.raises(requests.ConnectionError):
            server.get("/hello/")
        assert server.process.returncode == 0, server.log.read_text()
