"""Fixtures of the end-to-end suite: the example services on real servers.

``stack`` starts catalog under gunicorn (WSGI, two sync workers) and orders
under uvicorn (ASGI) on free 127.0.0.1 ports, orders calling catalog, and each
service's events worker with its relay (``microkit_consume --relay``). With
``DATABASE_URL``/``REDIS_URL`` set each service gets its own PostgreSQL
database (created here, dropped at the end) and a Redis key prefix of its own;
otherwise SQLite files and the local-memory cache. With ``RABBITMQ_URL`` set
events go through that RabbitMQ, in exchanges and queues named for this run
(deleted at the end); otherwise through kombu's filesystem transport in a
folder of the run. ``spawn`` starts further instances for fault scenarios.
Everything started is stopped at the end of the session, whatever happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from tests.e2e.servers import (
    EXAMPLE,
    ROOT,
    Server,
    ServiceProcess,
    WorkerProcess,
    base_env,
    create_database,
    database_url,
    drop_database,
    free_port,
    manage,
)

RUN_ID = uuid.uuid4().hex[:8]
#: The exchanges and queues of this run start with this.
EVENTS_PREFIX = f"e2e-{RUN_ID}"
SERVICES = ("catalog", "orders")
PROBLEM_SCHEMA = json.loads(
    (ROOT / "django_microkit" / "schemas" / "problem.json").read_text()
)
_problem_validator = jsonschema.Draft202012Validator(PROBLEM_SCHEMA)


def assert_problem(
    response: requests.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is a problem document with this status (and code)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/problem+json"), (
        response.headers,
        response.text[:500],
    )
    document: dict[str, Any] = response.json()
    _problem_validator.validate(document)
    assert document["status"] == status
    if code is not None:
        assert document["code"] == code, document
    assert document["request_id"] == response.headers["X-Request-ID"]
    return document


def is_valid_problem(document: object) -> bool:
    return bool(_problem_validator.is_valid(document))


# --- results written to the report ------------------------------------------


@dataclass
class Results:
    """Figures the suite measures (case counts, latencies, throughput)."""

    values: dict[str, Any] = field(default_factory=dict)

    def record(self, name: str, value: Any) -> None:
        self.values[name] = value


_results = Results()


@pytest.fixture(scope="session")
def results() -> Results:
    return _results


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _results.values:
        return
    terminalreporter.section("e2e measurements")
    for name, value in sorted(_results.values.items()):
        terminalreporter.write_line(f"{name}: {value}")
    target = os.environ.get("E2E_RESULTS")
    if target:
        Path(target).write_text(json.dumps(_results.values, indent=2, default=str))


# --- service processes --------------------------------------------------------


class Spawner:
    """Starts service instances and stops every one of them at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes: list[ServiceProcess] = []
        self.databases: list[str] = []
        self.base_database = os.environ.get("DATABASE_URL")
        self.redis = os.environ.get("REDIS_URL")
        self.rabbitmq = os.environ.get("RABBITMQ_URL")
        self.workers: list[WorkerProcess] = []

    def env(
        self,
        service: str,
        *,
        database: str,
        redis: str | None,
        prefix: str,
        **extra: str,
    ) -> dict[str, str]:
        env = base_env()
        env["DATABASE_URL"] = database
        if redis:
            env["REDIS_URL"] = redis
            env["CACHE_KEY_PREFIX"] = f"e2e-{RUN_ID}-{prefix}"
        env.update(self.broker_env(service))
        env.update(extra)
        return env

    def broker_env(self, service: str, broker_url: str | None = None) -> dict[str, str]:
        """Where ``service``'s events go: RabbitMQ (``broker_url``, by default
        RABBITMQ_URL) under names of this run, or a folder of the run."""
        broker_url = broker_url or self.rabbitmq
        if not broker_url:
            return {"EVENTS_FOLDER": str(self.tmp / "events-broker")}
        return {
            "EVENTS_BROKER_URL": broker_url,
            "EVENTS_EXCHANGE_PREFIX": f"{EVENTS_PREFIX}.",
            "EVENTS_QUEUE": f"{EVENTS_PREFIX}.{service}.events",
        }

    def database(self, name: str) -> str:
        """A fresh database of this run (PostgreSQL or SQLite), migrated by
        :meth:`migrate`."""
        full = f"e2e_{name}_{RUN_ID}"
        if self.base_database:
            create_database(self.base_database, full)
            self.databases.append(full)
        return database_url(self.base_database, full, self.tmp)

    def migrate(self, service: str, env: dict[str, str]) -> None:
        result = manage(service, env, "migrate", "--noinput", "-v0")
        assert result.returncode == 0, result.stdout + result.stderr

    def spawn(
        self,
        name: str,
        service: str,
        server: Server,
        env: dict[str, str],
        *,
        workers: int = 2,
        wait_ready: bool = True,
    ) -> ServiceProcess:
        process = ServiceProcess(
            name=name,
            service=service,
            server=server,
            port=free_port(),
            env=env,
            log_path=self.logs / f"{name}.log",
            workers=workers,
        )
        self.processes.append(process)
        process.start(wait_ready=wait_ready)
        return process

    def worker(self, name: str, service: str, env: dict[str, str]) -> WorkerProcess:
        """Start ``service``'s events worker (with its relay) on ``env``."""
        worker = WorkerProcess(
            name=name,
            service=service,
            env=env,
            log_path=self.logs / f"{name}.log",
            health_file=self.tmp / f"{name}.alive",
        )
        self.workers.append(worker)
        worker.start()
        return worker

    def close(self) -> None:
        try:
            for worker in self.workers:
                worker.stop()
            for process in self.processes:
                process.stop()
        finally:
            if self.base_database:
                for name in self.databases:
                    drop_database(self.base_database, name)
            if self.rabbitmq:
                delete_broker_names(self.rabbitmq)


def delete_broker_names(broker_url: str) -> None:
    """Delete the exchanges and queues this run made on the shared RabbitMQ,
    and nothing else."""
    from kombu.connection import Connection

    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.channel()
        for service in SERVICES:
            for delete, name in (
                (channel.queue_delete, f"{EVENTS_PREFIX}.{service}.events"),
                (channel.exchange_delete, f"{EVENTS_PREFIX}.{service}"),
            ):
                try:
                    delete(name)
                except Exception:  # noqa: BLE001 - absent already: nothing to do
                    channel = connection.channel()


@dataclass
class Stack:
    catalog: ServiceProcess
    orders: ServiceProcess
    catalog_database: str
    orders_database: str
    spawner: Spawner
    catalog_worker: WorkerProcess
    orders_worker: WorkerProcess

    def all_logs(self) -> bytes:
        return b"".join(
            process.log_path.read_bytes()
            for process in self.spawner.processes
            if process.log_path.exists()
        )


@pytest.fixture(scope="session")
def spawner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path_factory.mktemp("e2e"))
    try:
        yield spawner
    finally:
        spawner.close()


@pytest.fixture(scope="session")
def stack(spawner: Spawner) -> Stack:
    catalog_db = spawner.database("catalog")
    orders_db = spawner.database("orders")
    catalog_env = spawner.env(
        "catalog", database=catalog_db, redis=spawner.redis, prefix="catalog"
    )
    orders_env = spawner.env(
        "orders", database=orders_db, redis=spawner.redis, prefix="orders"
    )
    migrations = [
        threading.Thread(target=spawner.migrate, args=args)
        for args in (("catalog", catalog_env), ("orders", orders_env))
    ]
    for thread in migrations:
        thread.start()
    for thread in migrations:
        thread.join()
    # The workers first: their queues are bound before any order is placed.
    catalog_worker = spawner.worker("catalog-worker", "catalog", catalog_env)
    orders_worker = spawner.worker("orders-worker", "orders", orders_env)
    catalog = spawner.spawn("catalog", "catalog", "gunicorn", catalog_env, workers=2)
    orders_env["CATALOG_URL"] = catalog.url
    orders = spawner.spawn("orders", "orders", "uvicorn", orders_env)
    return Stack(
        catalog,
        orders,
        catalog_db,
        orders_db,
        spawner,
        catalog_worker,
        orders_worker,
    )


# --- service tokens -------------------------------------------------------------


class TokenMinter:
    """Fresh service tokens from orders' key, minted by orders' own code."""

    def __init__(self, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("token_minter.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=EXAMPLE,
            text=True,
        )
        self._lock = threading.Lock()

    def __call__(self, audience: str = "catalog", *scopes: str) -> str:
        assert self._process.stdin is not None and self._process.stdout is not None
        with self._lock:
            self._process.stdin.write(" ".join([audience, *scopes]) + "\n")
            self._process.stdin.flush()
            token = self._process.stdout.readline().strip()
        assert token, "the token minter stopped"
        return token

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@pytest.fixture(scope="session")
def mint(stack: Stack) -> Iterator[Callable[..., str]]:
    minter = TokenMinter(stack.orders.env)
    try:
        yield minter
    finally:
        minter.close()
