"""The worker side of events: handlers, the inbox, retries, dead letters, the
worker loop and the in-memory broker of ``django_microkit.testing``."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from django_microkit.events.consumer import Consumer, Worker, handler_backoff
from django_microkit.events.envelope import encode_event, new_event
from django_microkit.events.handlers import (
    EventHandler,
    FunctionHandler,
    get_handlers,
)
from django_microkit.events.models import DeadLetter, InboxEvent
from django_microkit.events.publish import publish
from django_microkit.service_auth.keys import load_key
from django_microkit.testing import EventCapture, capture_events, trust_test_service
from tests.service_auth_keys import EVIL, TESTS_PRIVATE, TESTS_PUBLIC
from tests.testapp import event_handlers
from tests.testapp.event_handlers import HANDLERS
from tests.testapp.models import Widget

pytestmark = pytest.mark.django_db

CREATED = "orders.widget.created.v1"


def events_settings(**events: Any) -> dict[str, Any]:
    return {
        "SERVICE_NAME": "tests",
        "SERVICE_AUTH": {
            "SIGNING_KEYS": [
                {"kid": "tests-1", "alg": "EdDSA", "key": {"value": TESTS_PRIVATE}}
            ],
            "PEERS": {
                "tests": [
                    {"kid": "tests-1", "alg": "EdDSA", "key": {"value": TESTS_PUBLIC}}
                ]
            },
        },
        "EVENTS": {
            "HANDLERS": HANDLERS,
            "HANDLER_BACKOFF": 0,
            "MAX_ATTEMPTS": 3,
            **events,
        },
    }


ORDERS_TEST_KEY = load_key("orders-t", "EdDSA", TESTS_PRIVATE, service="orders")


def _with_orders(**events: Any) -> dict[str, Any]:
    """The settings, with ``orders`` a peer of ORDERS_TEST_KEY."""
    settings = events_settings(
        TRANSPORT_CLASS="django_microkit.testing.InMemoryTransport", **events
    )
    settings["SERVICE_AUTH"]["PEERS"]["orders"] = [
        {"kid": "orders-t", "alg": "EdDSA", "key": {"value": TESTS_PUBLIC}}
    ]
    return settings


@pytest.fixture
def events() -> Iterator[EventCapture]:
    event_handlers.FAILURES.clear()
    with override_settings(MICROKIT=_with_orders()), capture_events() as capture:
        yield capture


def widget(name: str = "w1", size: int = 3) -> dict[str, Any]:
    return {"name": name, "size": size}


# --- one delivery -------------------------------------------------------------


def test_an_event_is_handled_once_with_its_inbox_row(events: EventCapture) -> None:
    outcome = events.receive(CREATED, widget(), key="w1")
    assert outcome is not None and outcome.status == "handled"
    assert list(Widget.objects.values_list("name", "size")) == [("w1", 3)]
    assert outcome.event is not None
    inbox = InboxEvent.objects.get()
    assert (inbox.source, inbox.event_id, inbox.type) == (
        "orders",
        outcome.event.id,
        CREATED,
    )
    assert str(inbox) == f"orders {outcome.event.id}"


def test_a_redelivered_event_has_no_second_effect(events: EventCapture) -> None:
    event_id = str(uuid.uuid4())
    first = events.receive(CREATED, widget(), key="w1", event_id=event_id)
    second = events.receive(CREATED, widget(), key="w1", event_id=event_id)
    assert first is not None and first.status == "handled"
    assert second is not None and second.status == "duplicate"
    assert Widget.objects.count() == 1
    assert InboxEvent.objects.count() == 1
    assert not DeadLetter.objects.exists()


def test_the_same_id_from_another_producer_is_another_event(
    events: EventCapture,
) -> None:
    event_id = str(uuid.uuid4())
    handlers = {**HANDLERS, "billing.widget.created.v1": HANDLERS[CREATED]}
    with override_settings(MICROKIT=_with_orders(HANDLERS=handlers)):
        events.receive(CREATED, widget("a"), key="a", event_id=event_id)
        outcome = events.receive(
            "billing.widget.created.v1", widget("b"), key="b", event_id=event_id
        )
    assert outcome is not None and outcome.status == "handled"
    assert Widget.objects.count() == 2


def test_a_plain_function_handler_gets_the_data(events: EventCapture) -> None:
    Widget.objects.create(name="w1", size=1)
    outcome = events.receive("orders.widget.resized.v1", widget(size=9), key="w1")
    assert outcome is not None and outcome.status == "handled"
    assert Widget.objects.get().size == 9


def test_invalid_data_is_a_dead_letter_at_once(events: EventCapture) -> None:
    outcome = events.receive(CREATED, {"name": "w1", "size": -1}, key="w1")
    assert outcome is not None and outcome.status == "rejected"
    letter = DeadLetter.objects.get()
    assert letter.reason == "invalid_data"
    assert letter.attempts == 1
    assert "size" in json.loads(letter.error)
    assert (letter.source, letter.type) == ("orders", CREATED)
    assert not Widget.objects.exists()
    assert not InboxEvent.objects.exists()


def test_a_failing_handler_is_retried_then_dead_lettered_and_rolled_back(
    events: EventCapture,
) -> None:
    outcome = events.receive(CREATED, widget("explode"), key="e")
    assert outcome is not None and outcome.status == "failed"
    assert not Widget.objects.exists()  # each attempt's write rolled back
    assert not InboxEvent.objects.exists()
    letter = DeadLetter.objects.get()
    assert (letter.reason, letter.attempts) == ("handler_failed", 3)
    assert letter.error == "RuntimeError: the widget exploded"
    assert json.loads(letter.body)["data"] == widget("explode")
    assert str(letter) == f"handler_failed {CREATED} {letter.event_id}"


def test_a_handler_that_fails_then_succeeds_has_one_effect(
    events: EventCapture,
) -> None:
    event_handlers.FAILURES["flaky"] = 2
    outcome = events.receive(CREATED, widget("flaky"), key="f")
    assert outcome is not None and outcome.status == "handled"
    assert Widget.objects.filter(name="flaky").count() == 1
    assert not DeadLetter.objects.exists()


def test_backoff_doubles_up_to_its_maximum() -> None:
    settings = {"HANDLER_BACKOFF": 0.5, "HANDLER_BACKOFF_MAX": 3.0}
    delays = [handler_backoff(n, settings) for n in (1, 2, 3, 4, 5)]  # type: ignore[arg-type]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_the_consumer_waits_the_backoff_between_attempts(
    events: EventCapture,
) -> None:
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return True

    with override_settings(MICROKIT=_with_orders(HANDLER_BACKOFF=0.25, MAX_ATTEMPTS=4)):
        body = signed(CREATED, widget("explode"))
        outcome = Consumer().receive(body, wait=wait)
    assert outcome is not None and outcome.status == "failed"
    assert waits == [0.25, 0.5, 1.0]
    assert DeadLetter.objects.get().attempts == 4


def test_stopping_during_a_backoff_records_nothing(events: EventCapture) -> None:
    outcome = Consumer().receive(
        signed(CREATED, widget("explode")), wait=lambda s: False
    )
    assert outcome is None
    assert not DeadLetter.objects.exists()


def signed(
    event_type: str, data: Any, *, source: str = "orders", **changes: Any
) -> str:
    """A body signed as ``orders`` with the key the settings trust for it."""
    event = dataclasses.replace(new_event(source, event_type, data, "k"), **changes)
    return encode_event(event, ORDERS_TEST_KEY)


# --- poison ---------------------------------------------------------------------


def _poison() -> dict[str, Any]:
    good = json.loads(signed(CREATED, widget()))
    tampered = {**good, "data": widget(size=99)}
    return {
        "not_json": b"\xff\xfe not json",
        "too_large": b"x" * 300_000,
        "invalid_envelope": json.dumps({"specversion": "1.0"}),
        "unknown_producer": encode_event(
            new_event("evil", "evil.widget.created.v1", widget(), "k"), EVIL
        ),
        "bad_signature": json.dumps(tampered),
        "unknown_type": signed("orders.widget.deleted.v1", widget()),
    }


@pytest.mark.parametrize("reason", sorted(_poison()))
def test_poison_is_a_dead_letter_at_once_with_its_reason(
    events: EventCapture, reason: str
) -> None:
    body = _poison()[reason]
    outcome = events.deliver(body)
    assert outcome is not None
    assert (outcome.status, outcome.reason) == ("rejected", reason)
    letter = DeadLetter.objects.get()
    assert (letter.reason, letter.attempts) == (reason, 1)
    assert letter.error == outcome.error and letter.error
    assert len(letter.body) <= 256 * 1024
    assert not Widget.objects.exists()


def test_a_dead_letter_keeps_what_can_be_read_of_a_refused_event(
    events: EventCapture,
) -> None:
    events.deliver(_poison()["unknown_producer"])
    letter = DeadLetter.objects.get()
    assert (letter.source, letter.type) == ("evil", "evil.widget.created.v1")
    assert letter.event_id
    events.deliver(json.dumps([1, 2]))
    assert DeadLetter.objects.last() is not None
    assert DeadLetter.objects.order_by("id").last().source == ""  # type: ignore[union-attr]


def test_a_redelivered_dead_letter_is_recorded_once(events: EventCapture) -> None:
    body = signed("orders.widget.deleted.v1", widget())
    events.deliver(body)
    events.deliver(body)
    assert DeadLetter.objects.count() == 1


# --- log lines ------------------------------------------------------------------


def test_log_lines_continue_the_events_request_and_trace(
    events: EventCapture, log_lines: Any
) -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    body = signed(CREATED, widget(), traceparent=trace, requestid="req-42")
    events.deliver(body)
    handled = [line for line in log_lines.all() if line["event"] == "event_handled"]
    assert len(handled) == 1
    line = handled[0]
    assert line["request_id"] == "req-42"
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["event_type"] == CREATED
    assert line["event_source"] == "orders"
    assert line["event_id"] == json.loads(body)["id"]


def test_a_failure_is_logged_without_a_traceback(
    events: EventCapture, log_lines: Any
) -> None:
    events.receive(CREATED, widget("explode"), key="e")
    failed = [line for line in log_lines.all() if line["event"] == "event_failed"]
    assert [line["attempts"] for line in failed] == [1, 2, 3]
    assert failed[0]["error"] == "RuntimeError: the widget exploded"
    assert "Traceback" not in log_lines.text()


# --- the worker -----------------------------------------------------------------


def test_the_worker_handles_what_is_queued_and_acks_it(events: EventCapture) -> None:
    for name in ("a", "b", "c"):
        events.transport.pending.append(signed(CREATED, widget(name)).encode())
    events.transport.pending.append(b"poison")
    events.run_worker()
    assert sorted(Widget.objects.values_list("name", flat=True)) == ["a", "b", "c"]
    assert list(DeadLetter.objects.values_list("reason", flat=True)) == ["not_json"]
    assert not events.transport.pending


def test_the_worker_gives_a_message_back_when_stopped_in_a_backoff(
    events: EventCapture,
) -> None:
    body = signed(CREATED, widget("explode")).encode()
    events.transport.pending.append(body)
    with override_settings(MICROKIT=_with_orders(HANDLER_BACKOFF=10)):
        worker = Worker(transport=events.transport)
        timer = threading.Timer(0.3, worker.stop)
        timer.start()
        started = time.monotonic()
        worker.run()
    assert time.monotonic() - started < 5
    assert list(events.transport.pending) == [body]
    assert not DeadLetter.objects.exists()
    assert not Widget.objects.exists()
