"""Events against the real RabbitMQ (RABBITMQ_URL) and PostgreSQL
(DATABASE_URL): publisher confirms, unroutable events, concurrent relays, a
relay killed between the broker's confirmation and its commit, and the broker
connection cut through a proxy of the test's own.

Every name (exchanges, queues) carries a prefix of this run, removed after.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection, transaction
from django.test import override_settings
from kombu.connection import Connection
from kombu.entity import Queue

from django_microkit.events.health import Events
from django_microkit.events.kombu import CONTENT_TYPE, KombuTransport
from django_microkit.events.models import OutboxEvent
from django_microkit.events.publish import publish
from django_microkit.events.relay import Relay, RoundResult
from django_microkit.events.transport import (
    OutgoingEvent,
    TransportError,
    exchange_name,
    get_transport,
)
from tests.events_helpers import Listener, events_settings, listening
from tests.tcp_proxy import CuttableProxy

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "")
REQUIRED = bool(os.environ.get("MICROKIT_REQUIRE_SERVICES"))
POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not RABBITMQ_URL and not REQUIRED, reason="needs RABBITMQ_URL (RabbitMQ)"
    ),
]
needs_postgres = pytest.mark.skipif(
    not POSTGRES and not REQUIRED, reason="needs DATABASE_URL (PostgreSQL)"
)

PLACED = "tests.order.placed.v1"
BINDINGS = {"tests": [PLACED]}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def prefix() -> Iterator[str]:
    """A name prefix of this test; its exchange and queue are deleted after."""
    assert RABBITMQ_URL, "the integration run needs RABBITMQ_URL"
    name = f"microkit-test-{uuid.uuid4().hex[:10]}."
    yield name
    with Connection(RABBITMQ_URL) as broker:
        channel = broker.channel()
        channel.queue_delete(f"{name}events")
        channel.exchange_delete(f"{name}tests")


def rabbit_settings(prefix: str, url: str = "", **events: Any) -> dict[str, Any]:
    return events_settings(
        BROKER_URL=url or RABBITMQ_URL,
        EXCHANGE_PREFIX=prefix,
        QUEUE=f"{prefix}events",
        PUBLISH_TIMEOUT=2,
        RETRY_BACKOFF=0.2,
        RETRY_BACKOFF_MAX=1,
        RELAY_INTERVAL=0.2,
        **events,
    )


@pytest.fixture
def rabbit(prefix: str) -> Iterator[KombuTransport]:
    with override_settings(MICROKIT=rabbit_settings(prefix)):
        transport = get_transport()
        assert isinstance(transport, KombuTransport)
        yield transport
        transport.close()


def event_ids(bodies: list[bytes]) -> list[str]:
    return [json.loads(body)["id"] for body in bodies]


def test_publish_waits_for_the_confirm_and_the_message_is_persistent(
    rabbit: KombuTransport, prefix: str
) -> None:
    queue = f"{prefix}events"
    Listener(rabbit, queue, BINDINGS).declare()
    rabbit.publish(OutgoingEvent("e-1", PLACED, "k", '{"n": 1}'))
    # Confirmed means the broker has it: it is in the queue now.
    with Connection(RABBITMQ_URL) as broker:
        message = Queue(queue, channel=broker.channel()).get(no_ack=True)
        assert message is not None
        # py-amqp decodes the body by its content_encoding.
        assert message.body == '{"n": 1}'
        assert message.content_encoding == "utf-8"
        assert message.content_type == CONTENT_TYPE
        assert message.properties["message_id"] == "e-1"
        assert message.properties["delivery_mode"] == 2
        assert message.delivery_info["exchange"] == f"{prefix}tests"
        assert message.delivery_info["routing_key"] == PLACED
    rabbit.check()


def test_an_unroutable_event_is_logged_and_counts_as_sent(
    rabbit: KombuTransport, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "django_microkit.events"):
        rabbit.publish(OutgoingEvent("e-2", PLACED, "k", "{}"))
    assert "event_unroutable: no queue is bound for tests.order.placed.v1" in (
        caplog.text
    )
    caplog.clear()
    # Once a queue is bound, the same kind of event is routed: no warning.
    Listener(rabbit, f"{rabbit.settings['QUEUE']}", BINDINGS).declare()
    with caplog.at_level(logging.WARNING, "django_microkit.events"):
        rabbit.publish(OutgoingEvent("e-3", PLACED, "k", "{}"))
    assert caplog.text == ""


@pytest.mark.django_db(transaction=True)
@needs_postgres
def test_concurrent_relays_send_each_event_once_in_key_order(
    rabbit: KombuTransport, prefix: str
) -> None:
    assert connection.vendor == "postgresql"
    with (
        override_settings(
            MICROKIT=rabbit_settings(prefix, SEND_ON_COMMIT=False, RELAY_BATCH_SIZE=7)
        ),
        listening(rabbit, f"{prefix}events", BINDINGS) as listener,
    ):
        for n in range(200):
            with transaction.atomic():
                publish(PLACED, {"n": n}, key=f"k{n % 5}")

        def relay() -> None:
            own = Relay(transport=KombuTransport("tests", rabbit.settings))
            while OutboxEvent.objects.filter(sent_at__isnull=True).exists():
                own.send_round()
            connection.close()

        threads = [threading.Thread(target=relay) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        bodies = listener.wait_for(200)
        time.sleep(0.5)
        bodies = list(listener.bodies)
    events = [json.loads(body) for body in bodies]
    assert len(events) == 200
    assert len({event["id"] for event in events}) == 200
    for key in range(5):
        numbers = [e["data"]["n"] for e in events if e["subject"] == f"k{key}"]
        assert numbers == list(range(key, 200, 5))


def _database_url() -> str:
    """DATABASE_URL naming the test database this test writes to."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{connection.settings_dict['NAME']}"))


@pytest.mark.django_db(transaction=True)
@needs_postgres
def test_a_relay_killed_between_confirm_and_commit_sends_the_event_again(
    rabbit: KombuTransport, prefix: str
) -> None:
    settings = rabbit_settings(prefix, SEND_ON_COMMIT=False)
    with override_settings(MICROKIT=settings):
        with transaction.atomic():
            row = publish(PLACED, {"n": 1}, key="k")
        with listening(rabbit, f"{prefix}events", BINDINGS) as listener:
            killed = {
                **settings,
                "EVENTS": {
                    **settings["EVENTS"],
                    "TRANSPORT_CLASS": "tests.events_transports.KillAfterConfirm",
                },
            }
            child = subprocess.run(
                [sys.executable, "-m", "django", "microkit_relay", "--once"],
                cwd=ROOT,
                env={
                    **os.environ,
                    "DJANGO_SETTINGS_MODULE": "tests.settings_events",
                    "MICROKIT_TEST_SETTINGS": json.dumps(killed),
                    "DATABASE_URL": _database_url(),
                },
                capture_output=True,
                timeout=60,
            )
            assert child.returncode == -9, child.stderr
            # The broker had confirmed it: the event is in the queue...
            assert event_ids(listener.wait_for(1)) == [str(row.event_id)]
            # ... but the row was never marked sent: the next round sends it again.
            assert OutboxEvent.objects.get().sent_at is None
            assert Relay().send_round() == RoundResult(sent=1)
            assert event_ids(listener.wait_for(2)) == [str(row.event_id)] * 2
    assert OutboxEvent.objects.get().sent_at is not None


@pytest.mark.django_db(transaction=True)
@needs_postgres
def test_a_cut_broker_connection_grows_the_outbox_which_drains_after(
    rabbit: KombuTransport, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker = urlsplit(RABBITMQ_URL)
    proxy = CuttableProxy((broker.hostname or "127.0.0.1", broker.port or 5672))
    netloc = f"{broker.username}:{broker.password}@127.0.0.1:{proxy.port}"
    proxied = urlunsplit(broker._replace(netloc=netloc))
    settings = rabbit_settings(prefix, url=proxied, LAG_WARN=0.5, LAG_FAIL=1.0)
    stop = threading.Event()
    published: list[str] = []

    def publish_some(count: int) -> None:
        for _ in range(count):
            with transaction.atomic():
                n = len(published)
                published.append(str(publish(PLACED, {"n": n}, key="k").event_id))

    try:
        # The consumer reads RabbitMQ directly; only the producer is cut off.
        with (
            listening(rabbit, f"{prefix}events", BINDINGS) as listener,
            override_settings(MICROKIT=settings),
        ):
            relay = threading.Thread(
                target=Relay().run, kwargs={"should_stop": stop.is_set}
            )
            relay.start()
            publish_some(5)
            assert event_ids(listener.wait_for(5)) == published
            Events("broker").run()  # ready: neither raises
            Events("outbox").run()

            proxy.cut()
            publish_some(10)
            time.sleep(1.2)
            assert OutboxEvent.objects.filter(sent_at__isnull=True).count() == 10
            with pytest.raises(Exception, match="unreachable"):
                Events("broker").run()
            with pytest.raises(Exception, match="oldest unsent event"):
                Events("outbox").run()
            assert len(listener.bodies) == 5

            proxy.restore()
            listener.wait_for(15, timeout=30)
            deadline = time.monotonic() + 10
            while (
                OutboxEvent.objects.filter(sent_at__isnull=True).exists()
                and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            Events("outbox").run()
            Events("broker").run()
            stop.set()
            relay.join(10)
            assert not relay.is_alive()
    finally:
        stop.set()
        proxy.close()
    received = event_ids(listener.bodies)
    # Nothing lost, in order; a duplicate is possible (a confirm lost in the cut).
    assert set(received) == set(published)
    assert list(dict.fromkeys(received)) == published
    assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()
    failed = OutboxEvent.objects.filter(attempts__gt=0)
    assert failed.exists()
    assert all(row.last_error for row in failed)


def test_an_exchange_of_its_own_per_producer(rabbit: KombuTransport) -> None:
    assert (
        exchange_name("tests", rabbit.settings)
        == f"{rabbit.settings['EXCHANGE_PREFIX']}tests"
    )
    # A publish to a broker that refuses the credentials is a TransportError.
    wrong = urlsplit(RABBITMQ_URL)._replace(
        netloc="nobody:wrong@" + (urlsplit(RABBITMQ_URL).hostname or "127.0.0.1")
    )
    refused = KombuTransport(
        "tests", {**rabbit.settings, "BROKER_URL": urlunsplit(wrong)}
    )
    with pytest.raises(TransportError) as caught:
        refused.check()
    assert "wrong" not in str(caught.value)
