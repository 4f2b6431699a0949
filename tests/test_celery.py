"""Celery tasks continue the request that sent them: a real worker, in this
process over the in-memory transport, and (integration) in a process of its
own over the machine's RabbitMQ."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, signals
from celery.contrib.testing.worker import start_worker
from django.test import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

import django_microkit.celery
from django_microkit.request_id import is_valid_request_id
from tests import celery_app
from tests.celery_app import app, seen
from tests.tracing_exporter import EXPORTER

ROOT = Path(__file__).resolve().parent.parent
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
TRACING = {"ENABLED": True, "SPAN_PROCESSORS": ["tests.tracing_exporter.processor"]}


@pytest.fixture(scope="module")
def worker() -> Iterator[None]:
    """A real worker (solo pool, in a thread of this process)."""
    with start_worker(app, perform_ping_check=False, shutdown_timeout=10):
        yield


@pytest.fixture
def send(settings: Any) -> Iterator[Client]:
    settings.ROOT_URLCONF = "tests.celery_app"
    yield Client(headers={"X-Request-ID": "req-celery", "traceparent": TRACEPARENT})


def run(client: Client, query: str = "") -> tuple[dict[str, Any], Any]:
    sent = client.get(f"/send{query}").json()
    return sent, app.AsyncResult(sent["task_id"])


def test_a_task_continues_the_request_that_sent_it(
    worker: None, send: Client, settings: Any
) -> None:
    settings.MICROKIT = {"SERVICE_NAME": "orders"}
    sent, result = run(send)
    seen_by_task = result.get(timeout=10)
    assert sent["request_id"] == seen_by_task["request_id"] == "req-celery"
    assert seen_by_task["trace_id"] == TRACE_ID
    # The task's own calls and tasks continue the same trace.
    assert seen_by_task["outgoing"]["request_id"] == "req-celery"
    assert seen_by_task["outgoing"]["traceparent"].split("-")[1] == TRACE_ID


def test_with_tracing_publish_and_run_are_spans_of_the_trace(
    worker: None, send: Client, settings: Any
) -> None:
    settings.MICROKIT = {"SERVICE_NAME": "orders", "TRACING": TRACING}
    EXPORTER.clear()
    sent, result = run(send)
    seen_by_task = result.get(timeout=10)
    spans = spans_by_kind(EXPORTER)
    server, producer, consumer = (
        spans[SpanKind.SERVER],
        spans[SpanKind.PRODUCER],
        spans[SpanKind.CONSUMER],
    )
    assert producer.name == "tests.seen publish"
    assert consumer.name == "tests.seen process"
    assert producer.parent is not None
    assert producer.parent.span_id == server.context.span_id
    assert consumer.parent is not None and consumer.parent.is_remote
    assert consumer.parent.span_id == producer.context.span_id
    assert {span.context.trace_id for span in (server, producer, consumer)} == {
        int(TRACE_ID, 16)
    }
    assert (consumer.attributes or {})["messaging.message.id"] == sent["task_id"]
    outgoing = seen_by_task["outgoing"]["traceparent"]
    assert outgoing.split("-")[2] == format(consumer.context.span_id, "016x")


def test_a_failing_task_fails_its_span(
    worker: None, send: Client, settings: Any
) -> None:
    settings.MICROKIT = {"SERVICE_NAME": "orders", "TRACING": TRACING}
    EXPORTER.clear()
    _, result = run(send, "?fail=1")
    with pytest.raises(ValueError):
        result.get(timeout=10)
    consumer = spans_by_kind(EXPORTER)[SpanKind.CONSUMER]
    assert consumer.status.status_code is StatusCode.ERROR
    assert (consumer.attributes or {})["error.type"] == "ValueError"


def test_a_task_sent_outside_a_request_starts_a_trace(
    worker: None, settings: Any
) -> None:
    settings.MICROKIT = {"SERVICE_NAME": "orders"}
    seen_by_task = seen.delay().get(timeout=10)
    # A request ID of the task's own, as a request without one gets.
    assert is_valid_request_id(seen_by_task["request_id"])
    assert seen_by_task["trace_id"] is not None


def test_connecting_twice_adds_no_second_handler() -> None:
    before = len(signals.before_task_publish.receivers)
    django_microkit.celery.connect_signals()
    assert len(signals.before_task_publish.receivers) == before
    django_microkit.celery.disconnect_signals()
    try:
        assert len(signals.before_task_publish.receivers) == before - 1
    finally:
        django_microkit.celery.connect_signals()


def spans_by_kind(exporter: InMemorySpanExporter) -> dict[SpanKind, Any]:
    deadline = time.monotonic() + 5
    while True:  # the worker's postrun may end its span just after the result
        spans = {span.kind: span for span in exporter.get_finished_spans()}
        if SpanKind.CONSUMER in spans or time.monotonic() > deadline:
            return spans
        time.sleep(0.01)


# --------------------------------------------------------------------------
# A worker process on the machine's RabbitMQ (integration)
# --------------------------------------------------------------------------

RABBITMQ = os.environ.get("CELERY_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.integration
def test_a_worker_process_logs_the_request_id_and_trace_of_the_request(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _reachable("127.0.0.1", 5672):
        if os.environ.get("MICROKIT_REQUIRE_SERVICES"):
            pytest.fail("RabbitMQ is not reachable on 127.0.0.1:5672")
        pytest.skip("RabbitMQ is not reachable on 127.0.0.1:5672")
    queue = f"microkit-tests-{uuid.uuid4().hex[:12]}"
    environment = {
        **os.environ,
        "CELERY_BROKER_URL": RABBITMQ,
        "CELERY_TEST_QUEUE": queue,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "CELERY_TEST_LOG_JSON": "1",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.celery_worker"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rabbit = Celery("tests-rabbit", broker=RABBITMQ, backend="rpc://")
    rabbit.conf.update(task_default_queue=queue, broker_connection_retry=False)
    monkeypatch.setattr(celery_app, "SENDER", rabbit)
    try:
        settings.ROOT_URLCONF = "tests.celery_app"
        settings.MICROKIT = {"SERVICE_NAME": "orders"}
        client = Client(
            headers={"X-Request-ID": "req-rabbit", "traceparent": TRACEPARENT}
        )
        sent = client.get("/send").json()
        seen_by_task = rabbit.AsyncResult(sent["task_id"]).get(timeout=30)
        assert seen_by_task["request_id"] == "req-rabbit"
        assert seen_by_task["trace_id"] == TRACE_ID
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
        with rabbit.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
        rabbit.close()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (task_line,) = [line for line in lines if line.get("event") == "task ran"]
    assert task_line["request_id"] == "req-rabbit"
    assert task_line["trace_id"] == TRACE_ID


def test_a_failure_of_a_task_not_seen_running_is_ignored() -> None:
    signals.task_failure.send(sender=None, task_id="never-ran", exception=ValueError())
    signals.task_postrun.send(sender=None, task_id="never-ran")
