"""Draining: readiness fails at once while liveness passes; the gunicorn hooks
and the uvicorn server in this process (tests/test_gunicorn.py runs a real
gunicorn, and the uvicorn test below a real uvicorn)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import uvicorn
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client, override_settings

from django_microkit import gunicorn as hooks
from django_microkit.drain import (
    MAX_DELAY,
    check_drain,
    drain_delay,
    is_draining,
    start_draining,
    stop_draining,
)
from django_microkit.metrics.multiprocess import ENVIRONMENT_VARIABLE
from django_microkit.uvicorn import DrainingServer, _options, make_server, run
from django_microkit.uvicorn import main as run_main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _not_draining() -> Iterator[None]:
    stop_draining()
    yield
    stop_draining()


def delay(seconds: object) -> Any:
    return override_settings(MICROKIT={"DRAIN": {"DELAY": seconds}})


# --- readiness -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_draining_process_fails_readiness_not_liveness() -> None:
    client = Client()
    assert client.get("/health/ready").status_code == 200
    start_draining()
    start_draining()  # once is enough; again changes nothing
    assert is_draining()
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "fail"
    (entry,) = ready.json()["checks"]["drain"]
    assert (entry["status"], entry["output"]) == ("fail", "draining")
    assert client.get("/health/live").status_code == 200
    stop_draining()
    assert client.get("/health/ready").status_code == 200


def test_a_draining_process_fails_readiness_under_asgi() -> None:
    start_draining()
    client = AsyncClient()
    assert async_to_sync(client.get)("/health/ready").status_code == 503
    assert async_to_sync(client.get)("/health/live").status_code == 200


@pytest.mark.parametrize(
    ("value", "expected"), [(5, 5.0), (-1, 0.0), (1e9, MAX_DELAY), ("5", 0.0)]
)
def test_the_delay_is_held_within_bounds(value: object, expected: float) -> None:
    with delay(value):
        assert drain_delay() == expected


@pytest.mark.parametrize(
    ("value", "ids"), [(0, []), (30.5, []), (-1, ["E110"]), (301, ["E110"]), ("x", [])]
)
def test_check_drain(value: object, ids: list[str]) -> None:
    with delay(value):
        assert [
            str(m.id).removeprefix("django_microkit.") for m in check_drain()
        ] == ids


# --- the gunicorn hooks, called as gunicorn calls them -------------------------------


def fake_server(workers: int) -> Any:
    return SimpleNamespace(
        cfg=SimpleNamespace(workers=workers), log=logging.getLogger()
    )


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    # Set first, so that the end of the test removes what the hooks export.
    for name in (ENVIRONMENT_VARIABLE, "DJANGO_SETTINGS_MODULE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return monkeypatch


def test_on_starting_empties_the_directory_of_the_environment(
    tmp_path: Path, environment: pytest.MonkeyPatch
) -> None:
    environment.setenv(ENVIRONMENT_VARIABLE, str(tmp_path))
    (tmp_path / "counter_7.db").write_bytes(b"old")
    hooks.on_starting(fake_server(4))
    assert list(tmp_path.iterdir()) == []
    hooks.on_exit(fake_server(4))
    assert tmp_path.exists()  # not made by the hooks: kept


def test_on_starting_uses_the_setting_when_django_settings_are_named(
    tmp_path: Path, environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("DJANGO_SETTINGS_MODULE", "tests.settings")
    directory = tmp_path / "from-settings"
    with override_settings(MICROKIT={"METRICS": {"MULTIPROCESS_DIR": str(directory)}}):
        hooks.on_starting(fake_server(2))
    assert os.environ[ENVIRONMENT_VARIABLE] == str(directory)
    assert directory.is_dir()


def test_one_worker_needs_no_directory(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("DJANGO_SETTINGS_MODULE", "tests.settings")
    with override_settings(MICROKIT={"METRICS": {"MULTIPROCESS_DIR": 7}}):
        hooks.on_starting(fake_server(1))
    assert ENVIRONMENT_VARIABLE not in os.environ


def test_several_workers_get_a_directory_removed_at_exit(
    environment: pytest.MonkeyPatch,
) -> None:
    hooks.on_starting(fake_server(2))
    made = Path(os.environ[ENVIRONMENT_VARIABLE])
    assert made.is_dir()
    hooks.child_exit(fake_server(2), SimpleNamespace(pid=12345))
    hooks.on_exit(fake_server(2))
    assert not made.exists()


@contextlib.contextmanager
def sigterm_handler(handler: Any) -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("seconds", [0.3, 0])
def test_a_worker_drains_on_sigterm_then_stops_once(seconds: float) -> None:
    stopped: list[int] = []
    with sigterm_handler(lambda signum, frame: stopped.append(signum)):
        with delay(seconds):
            hooks.post_worker_init(SimpleNamespace(log=logging.getLogger()))
        os.kill(os.getpid(), signal.SIGTERM)
        assert is_draining()
        assert stopped == ([] if seconds else [signal.SIGTERM])
        os.kill(os.getpid(), signal.SIGTERM)  # a second one changes nothing
        time.sleep(seconds + 0.3)
        assert stopped == [signal.SIGTERM]


def test_a_worker_without_a_handler_of_its_own_only_drains() -> None:
    with sigterm_handler(signal.SIG_IGN), delay(0):
        hooks.post_worker_init(SimpleNamespace(log=logging.getLogger()))
        os.kill(os.getpid(), signal.SIGTERM)
    assert is_draining()


# --- uvicorn -------------------------------------------------------------------------


async def _app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
    raise NotImplementedError


def test_the_uvicorn_server_drains_before_it_exits() -> None:
    server = DrainingServer(uvicorn.Config(_app))
    with delay(0.2):
        server.handle_exit(signal.SIGTERM, None)
    assert is_draining() and not server.should_exit
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit


@pytest.mark.parametrize(
    ("signum", "seconds"), [(signal.SIGINT, 5), (signal.SIGTERM, 0)]
)
def test_the_uvicorn_server_stops_at_once(signum: int, seconds: float) -> None:
    server = DrainingServer(uvicorn.Config(_app))
    with delay(seconds):
        server.handle_exit(signum, None)
    assert server.should_exit


def test_the_uvicorn_server_stops_after_the_delay() -> None:
    server = DrainingServer(uvicorn.Config(_app))
    with delay(0.1):
        server.handle_exit(signal.SIGTERM, None)
    deadline = time.monotonic() + 5
    while not server.should_exit and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.should_exit


def test_make_server_empties_the_directory(
    tmp_path: Path, environment: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gauge_livemax_3.db").write_bytes(b"old")
    environment.setenv(ENVIRONMENT_VARIABLE, str(tmp_path))
    server = make_server("tests.gunicorn_service:asgi_application", port=1234)
    assert (server.config.port, list(tmp_path.iterdir())) == (1234, [])
    environment.delenv(ENVIRONMENT_VARIABLE)
    assert isinstance(make_server("x:y"), DrainingServer)


def test_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    options = _options(["svc.asgi:application", "--port", "9", "--app-dir", "/srv"])
    assert options == {
        "app": "svc.asgi:application",
        "host": "127.0.0.1",
        "port": 9,
        "lifespan": "auto",
        "access_log": True,
        "timeout_graceful_shutdown": None,
    }
    assert sys.path[0] == "/srv"
    assert _options(["a:b", "--no-access-log"])["access_log"] is False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_real_uvicorn_drains_on_sigterm(tmp_path: Path) -> None:
    port, log = _free_port(), tmp_path / "uvicorn.log"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(PYTHONPATH=str(ROOT), MICROKIT_TEST_DRAIN_DELAY="1.5")
    command = [
        sys.executable,
        "-m",
        "django_microkit.uvicorn",
        "tests.gunicorn_service:asgi_application",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--timeout-graceful-shutdown",
        "10",
    ]
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(requests.RequestException):
                if requests.get(url + "/health/ready", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        in_flight: list[int] = []
        slow = threading.Thread(
            target=lambda: in_flight.append(
                requests.get(url + "/slow/?seconds=2.5", timeout=10).status_code
            )
        )
        slow.start()
        time.sleep(0.3)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        assert requests.get(url + "/health/ready", timeout=5).status_code == 503
        assert requests.get(url + "/health/live", timeout=5).status_code == 200
        process.wait(timeout=30)
        slow.join(timeout=10)
        assert in_flight == [200], log.read_text()
        assert time.monotonic() - signalled >= 1.5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.parametrize(
    "start",
    [
        lambda: run("no_such_module:app"),
        lambda: run_main(["no_such_module:app", "--port", "1"]),
    ],
)
def test_the_runner_serves_the_application_it_is_given(start: Any) -> None:
    # uvicorn itself refuses an application it cannot import: its start-up
    # failure status.
    with pytest.raises(SystemExit) as exit_:
        start()
    assert exit_.value.code == 3
