"""Events in the metrics and the traces: counts of published, consumed and
dead-lettered events, the outbox lag gauge, and producer and consumer spans on
the event's own trace context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from prometheus_client import REGISTRY

from django_microkit.events.health import outbox_lag
from django_microkit.events.publish import publish
from django_microkit.events.relay import Relay
from django_microkit.request_id import parse_traceparent
from django_microkit.testing import EventCapture, capture_events
from tests.service_auth_keys import TESTS_PRIVATE, TESTS_PUBLIC
from tests.testapp.event_handlers import HANDLERS
from tests.tracing_exporter import EXPORTER

pytestmark = pytest.mark.django_db(transaction=True)

CREATED = "orders.widget.created.v1"
COUNTED = "orders.widget.counted.v1"


def orders_settings(**microkit: Any) -> dict[str, Any]:
    """orders, publishing and consuming its own events (a peer of itself)."""
    key = {"kid": "orders-t", "alg": "EdDSA"}
    return {
        "SERVICE_NAME": "orders",
        "SERVICE_AUTH": {
            "SIGNING_KEYS": [{**key, "key": {"value": TESTS_PRIVATE}}],
            "PEERS": {"orders": [{**key, "key": {"value": TESTS_PUBLIC}}]},
        },
        "EVENTS": {
            "HANDLERS": HANDLERS,
            "HANDLER_BACKOFF": 0,
            "MAX_ATTEMPTS": 1,
            "TRANSPORT_CLASS": "django_microkit.testing.InMemoryTransport",
        },
        **microkit,
    }


@pytest.fixture
def events() -> Iterator[EventCapture]:
    with override_settings(MICROKIT=orders_settings()), capture_events() as capture:
        yield capture


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_published_consumed_and_dead_lettered_events_are_counted(
    events: EventCapture,
) -> None:
    published = sample("microkit_events_published_total", event_type=COUNTED)
    consumed = sample("microkit_events_consumed_total", event_type=CREATED)
    known = sample("microkit_events_dead_lettered_total", event_type=CREATED)
    other = sample("microkit_events_dead_lettered_total", event_type="_other")

    publish(COUNTED, {"count": 1}, key="c")  # autocommit: sent at once
    assert events.types == [COUNTED]
    assert sample("microkit_events_published_total", event_type=COUNTED) == (
        published + 1
    )

    outcome = events.receive(CREATED, {"name": "w1", "size": 3}, key="w1")
    assert outcome is not None and outcome.status == "handled"
    assert sample("microkit_events_consumed_total", event_type=CREATED) == (
        consumed + 1
    )

    # Data its handler refuses: a dead letter under its (handled) type; a
    # message that is not even JSON: under one label for every stranger, so a
    # hostile producer cannot make a series per string it sends.
    events.receive(CREATED, {"name": "", "size": "big"}, key="w2")
    events.deliver(b"not json")
    events.deliver(b'{"specversion": "1.0", "type": "x.y.z' + b"9" * 50 + b'.v1"}')
    assert sample("microkit_events_dead_lettered_total", event_type=CREATED) == (
        known + 1
    )
    assert sample("microkit_events_dead_lettered_total", event_type="_other") == (
        other + 2
    )
    assert sample("microkit_events_consumed_total", event_type=CREATED) == (
        consumed + 1
    )


def test_the_outbox_lag_gauge_follows_the_oldest_unsent_event(
    events: EventCapture,
) -> None:
    with override_settings(MICROKIT=orders_settings(EVENTS={"SEND_ON_COMMIT": False})):
        publish(COUNTED, {"count": 2}, key="c")
    lag = outbox_lag()
    assert lag > 0
    assert sample("microkit_outbox_lag_seconds") == lag
    assert Relay().send_round().sent == 1
    assert outbox_lag() == 0.0
    assert sample("microkit_outbox_lag_seconds") == 0.0


@pytest.fixture
def exporter(events: EventCapture) -> Iterator[InMemorySpanExporter]:
    tracing = {"ENABLED": True, "SPAN_PROCESSORS": ["tests.tracing_exporter.processor"]}
    with override_settings(MICROKIT=orders_settings(TRACING=tracing)):
        EXPORTER.clear()
        yield EXPORTER
        EXPORTER.clear()


def test_an_event_is_produced_and_consumed_in_spans_of_one_trace(
    events: EventCapture, exporter: InMemorySpanExporter
) -> None:
    publish(CREATED, {"name": "traced", "size": 1}, key="t")
    (sent,) = events.transport.sent
    (event,) = events.published
    (producer,) = exporter.get_finished_spans()
    assert producer.name == f"{CREATED} create"
    assert producer.context is not None
    trace = parse_traceparent(event.traceparent or "")
    assert trace is not None
    # The event names the producer span as its parent, in the span's trace.
    assert trace.trace_id == format(producer.context.trace_id, "032x")
    assert trace.parent_id == format(producer.context.span_id, "016x")

    outcome = events.deliver(sent.body)
    assert outcome is not None and outcome.status == "handled"
    consumer = exporter.get_finished_spans()[-1]
    assert consumer.name == f"{CREATED} process"
    assert consumer.context is not None and consumer.parent is not None
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.message.id"] == event.id
