"""The worker against the real RabbitMQ and PostgreSQL: killed in a handler,
fed poison, stopped by SIGTERM. Needs RABBITMQ_URL and DATABASE_URL (a
PostgreSQL one); the integration run (MICROKIT_REQUIRE_SERVICES=1) never
skips."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from django_microkit.events.envelope import encode_event, new_event
from django_microkit.events.models import DeadLetter, InboxEvent
from django_microkit.service_auth.keys import load_key
from tests.service_auth_keys import TESTS_PRIVATE, TESTS_PUBLIC
from tests.testapp.event_handlers import HANDLERS
from tests.testapp.models import Widget

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "")
_REQUIRED = bool(os.environ.get("MICROKIT_REQUIRE_SERVICES"))

pytestmark = [
    pytest.mark.skipif(
        not (RABBITMQ_URL and os.environ.get("DATABASE_URL")) and not _REQUIRED,
        reason="needs RABBITMQ_URL and a PostgreSQL DATABASE_URL",
    ),
    pytest.mark.django_db(transaction=True),
]

CREATED = "orders.widget.created.v1"
ORDERS = load_key("orders-t", "EdDSA", TESTS_PRIVATE, service="orders")
ROOT = Path(__file__).resolve().parent.parent
_TIMEOUT = 30.0


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float = _TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Broker:
    """This test's exchange and queue on the shared RabbitMQ (names of its
    own, deleted afterwards), and a raw kombu publisher into them."""

    def __init__(self) -> None:
        # kombu has no type annotations: reached through Any.
        kombu: Any = importlib.import_module("kombu")
        run = uuid.uuid4().hex[:10]
        self.prefix = f"microkit-test-{run}."
        self.queue_name = f"microkit-test-{run}.tests.events"
        self.connection: Any = kombu.Connection(RABBITMQ_URL, connect_timeout=5)
        self.exchange: Any = kombu.Exchange(
            f"{self.prefix}orders", "topic", durable=True
        )
        self.queue: Any = kombu.Queue(
            self.queue_name,
            [kombu.binding(self.exchange, routing_key=CREATED)],
            durable=True,
        )
        self.queue(self.connection.default_channel).declare()

    def publish(self, body: str | bytes) -> None:
        producer = self.connection.Producer()
        producer.publish(
            body,
            exchange=self.exchange,
            routing_key=CREATED,
            content_type="application/cloudevents+json",
            content_encoding="utf-8",
            delivery_mode=2,
        )

    def close(self) -> None:
        channel = self.connection.default_channel
        self.queue(channel).delete()
        self.exchange(channel).delete()
        self.connection.release()


@pytest.fixture
def broker() -> Iterator[Broker]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the worker runs in another process")
    broker = Broker()
    try:
        yield broker
    finally:
        broker.close()


def worker_settings(broker: Broker) -> dict[str, Any]:
    return {
        "SERVICE_NAME": "tests",
        "SERVICE_AUTH": {
            "PEERS": {
                "orders": [
                    {"kid": "orders-t", "alg": "EdDSA", "key": {"value": TESTS_PUBLIC}}
                ]
            }
        },
        "EVENTS": {
            "BROKER_URL": RABBITMQ_URL,
            "EXCHANGE_PREFIX": broker.prefix,
            "QUEUE": broker.queue_name,
            "HANDLERS": HANDLERS,
            "HANDLER_BACKOFF": 0,
            "MAX_ATTEMPTS": 2,
        },
    }


def start_worker(broker: Broker, tmp_path: Path, **env: str) -> subprocess.Popen[bytes]:
    database = connection.settings_dict
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )
    health = tmp_path / "worker.alive"
    health.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django",
            "microkit_consume",
            "--health-file",
            str(health),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.events_worker_settings",
            "DATABASE_URL": url,
            "MICROKIT_TEST_SETTINGS": json.dumps(worker_settings(broker)),
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for(health.exists, "the worker's heartbeat")
    return process


def signed(name: str, event_id: str | None = None) -> str:
    event = new_event("orders", CREATED, {"name": name, "size": 1}, name)
    if event_id is not None:
        from dataclasses import replace

        event = replace(event, id=event_id)
    return encode_event(event, ORDERS)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(_TIMEOUT)
    finally:
        if process.poll() is None:  # pragma: no cover - a hung worker
            process.kill()


def test_a_worker_killed_in_a_handler_leaves_one_effect(
    broker: Broker, tmp_path: Path
) -> None:
    mark = tmp_path / "in-handler"
    first = start_worker(
        broker,
        tmp_path,
        MICROKIT_TEST_HANDLER_PAUSE="30",
        MICROKIT_TEST_HANDLER_MARK=str(mark),
    )
    try:
        broker.publish(signed("slow-1"))
        wait_for(mark.exists, "the handler to start")
        first.send_signal(signal.SIGKILL)
        first.wait(_TIMEOUT)
    finally:
        if first.poll() is None:  # pragma: no cover
            first.kill()
    assert not Widget.objects.exists()  # its transaction died with it
    second = start_worker(broker, tmp_path)
    try:
        wait_for(lambda: Widget.objects.exists(), "the redelivered event")
        time.sleep(0.5)  # a second effect would show now
    finally:
        assert stop(second) == 0
    assert list(Widget.objects.values_list("name", flat=True)) == ["slow-1"]
    assert InboxEvent.objects.count() == 1
    assert not DeadLetter.objects.exists()


def test_poison_is_dead_lettered_and_the_worker_keeps_going(
    broker: Broker, tmp_path: Path
) -> None:
    worker = start_worker(broker, tmp_path)
    try:
        duplicate = signed("twice")
        for body in (
            b"\xff not json",
            signed("before"),
            encode_event(
                new_event("orders", CREATED, {"name": "x"}, "k"),
                load_key("orders-x", "EdDSA", TESTS_PRIVATE, service="orders"),
            ),
            json.dumps({"specversion": "1.0"}),
            signed("explode"),
            duplicate,
            duplicate,
            signed("after"),
        ):
            broker.publish(body)
        wait_for(lambda: Widget.objects.filter(name="after").exists(), "the last event")
        assert worker.poll() is None
    finally:
        assert stop(worker) == 0
    assert sorted(Widget.objects.values_list("name", flat=True)) == [
        "after",
        "before",
        "twice",
    ]
    assert sorted(DeadLetter.objects.values_list("reason", flat=True)) == [
        "bad_signature",
        "handler_failed",
        "invalid_envelope",
        "not_json",
    ]
    failed = DeadLetter.objects.get(reason="handler_failed")
    assert (failed.attempts, failed.error) == (2, "RuntimeError: the widget exploded")
    # Everything was acked: nothing is left in the queue.
    _, messages, _ = broker.queue(broker.connection.default_channel).queue_declare(
        passive=True
    )
    assert messages == 0
