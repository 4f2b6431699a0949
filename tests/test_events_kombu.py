"""KombuTransport on the embedded filesystem transport and against a broker
that is not there; the readiness checks and the system checks of publishing."""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import CheckMessage
from django.test import override_settings
from django.utils import timezone

from django_microkit.conf import DEFAULTS
from django_microkit.events.checks import check_publishing, check_publishing_deploy
from django_microkit.events.health import Events, outbox_lag
from django_microkit.events.kombu import KombuTransport, filesystem_folder
from django_microkit.events.models import OutboxEvent
from django_microkit.events.publish import publish
from django_microkit.events.transport import (
    Delivery,
    OutgoingEvent,
    TransportError,
    sleep_unless_stopped,
)
from django_microkit.health import run_probe
from tests.events_helpers import events_settings, listening

PLACED = "tests.order.placed.v1"
BINDINGS = {"tests": [PLACED]}


def settings_of(**events: Any) -> Any:
    section = DEFAULTS["EVENTS"]
    assert isinstance(section, dict)
    values = {key: option.default for key, option in section.items()}
    values.update(events)
    return values


@pytest.fixture
def transport(tmp_path: Path) -> Iterator[KombuTransport]:
    made = KombuTransport("tests", settings_of(FILESYSTEM_FOLDER=str(tmp_path)))
    yield made
    made.close()


def outgoing(n: int, key: str = "k") -> OutgoingEvent:
    return OutgoingEvent(f"event-{n}", PLACED, key, f'{{"n": {n}}}')


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_default_folder_is_in_the_temporary_directory() -> None:
    folder = filesystem_folder(settings_of())
    assert folder.name == "django-microkit-events"
    assert filesystem_folder(settings_of(FILESYSTEM_FOLDER="/x/y")) == Path("/x/y")


def test_messages_arrive_in_order_with_their_properties(
    transport: KombuTransport,
) -> None:
    with listening(transport, "tests.events", BINDINGS) as listener:
        for n in range(50):
            transport.publish(outgoing(n))
        bodies = listener.wait_for(50)
    assert bodies == [f'{{"n": {n}}}'.encode() for n in range(50)]
    assert listener.redelivered == [False] * 50


def test_only_bound_types_reach_a_queue(transport: KombuTransport) -> None:
    with listening(transport, "tests.events", BINDINGS) as listener:
        transport.publish(OutgoingEvent("x", "tests.order.cancelled.v1", "k", "{}"))
        transport.publish(outgoing(1))
        assert listener.wait_for(1) == [b'{"n": 1}']
        time.sleep(0.3)
        assert len(listener.bodies) == 1


def test_two_processes_share_a_folder(tmp_path: Path) -> None:
    # Two transports of one folder are two services of one machine.
    producer = KombuTransport("tests", settings_of(FILESYSTEM_FOLDER=str(tmp_path)))
    consumer = KombuTransport("other", settings_of(FILESYSTEM_FOLDER=str(tmp_path)))
    with listening(consumer, "other.events", BINDINGS) as listener:
        producer.publish(outgoing(1))
        assert listener.wait_for(1) == [b'{"n": 1}']
    producer.close()


def test_a_requeued_message_comes_back_redelivered(transport: KombuTransport) -> None:
    seen: list[tuple[bytes, bool]] = []
    stop = threading.Event()

    def on_message(delivery: Delivery) -> None:
        seen.append((delivery.body, delivery.redelivered))
        if len(seen) == 1:
            delivery.requeue()
        else:
            delivery.ack()
            stop.set()

    transport.publish(outgoing(0))  # no queue yet: dropped
    thread = threading.Thread(
        target=transport.consume,
        args=("tests.events", BINDINGS, on_message),
        kwargs={"should_stop": stop.is_set},
    )
    thread.start()
    time.sleep(0.3)
    transport.publish(outgoing(1))
    thread.join(10)
    assert seen == [(b'{"n": 1}', False), (b'{"n": 1}', True)]


def test_consume_returns_within_a_second_of_should_stop(
    transport: KombuTransport,
) -> None:
    stop = threading.Event()
    thread = threading.Thread(
        target=transport.consume,
        args=("tests.events", BINDINGS, lambda delivery: None),
        kwargs={"should_stop": stop.is_set},
    )
    thread.start()
    time.sleep(0.3)
    stopped = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - stopped < 1.5


def test_a_consumer_whose_folder_vanished_reconnects(
    transport: KombuTransport, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, "django_microkit.events"),
        listening(transport, "tests.events", BINDINGS) as listener,
    ):
        transport.publish(outgoing(1))
        assert listener.wait_for(1) == [b'{"n": 1}']
        shutil.rmtree(tmp_path / "queues")
        deadline = time.monotonic() + 10
        while "reconnecting" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "The events broker connection was lost" in caplog.text
        time.sleep(1.5)  # the consumer's backoff: it declares its queue again
        transport.publish(outgoing(2))
        assert listener.wait_for(2) == [b'{"n": 1}', b'{"n": 2}']


def test_check_passes_on_a_writable_folder(transport: KombuTransport) -> None:
    transport.check()


def test_check_fails_when_the_folder_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    broken = KombuTransport("tests", settings_of(FILESYSTEM_FOLDER=str(blocker)))
    with pytest.raises(TransportError, match="unreachable: NotADirectoryError"):
        broken.check()
    with pytest.raises(TransportError, match="Publishing tests.order.placed.v1"):
        broken.publish(outgoing(1))


def test_an_unreachable_broker(caplog: pytest.LogCaptureFixture) -> None:
    url = f"amqp://guest:secret-password@127.0.0.1:{closed_port()}//"
    broker = KombuTransport("tests", settings_of(BROKER_URL=url, PUBLISH_TIMEOUT=1))
    with pytest.raises(TransportError) as caught:
        broker.check()
    assert "secret-password" not in str(caught.value)
    with pytest.raises(TransportError, match="event-1 failed"):
        broker.publish(outgoing(1))
    calls: list[float] = []

    def should_stop() -> bool:
        calls.append(time.monotonic())
        return calls[-1] - calls[0] > 1.2

    with caplog.at_level(logging.WARNING, "django_microkit.events"):
        broker.consume(
            "tests.events", BINDINGS, lambda d: None, should_stop=should_stop
        )
    assert "The events broker is unreachable" in caplog.text
    assert "secret-password" not in caplog.text
    # It waited between attempts, asking should_stop() meanwhile: no busy loop.
    assert caplog.text.count("unreachable") <= 3
    broker.close()


def test_sleep_unless_stopped() -> None:
    started = time.monotonic()
    sleep_unless_stopped(0.3, lambda: False)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    sleep_unless_stopped(30, lambda: True)
    assert time.monotonic() - started < 0.1


# --- readiness checks --------------------------------------------------------


def readiness(tmp_path: Path, **events: Any) -> dict[str, Any]:
    settings = events_settings(FILESYSTEM_FOLDER=str(tmp_path), **events)
    settings["HEALTH"] = {
        "READINESS_CHECKS": [
            "django_microkit.events.health.broker",
            "django_microkit.events.health.outbox",
        ],
        "SHOW_DETAILS": True,
    }
    with override_settings(MICROKIT=settings):
        report = run_probe("ready", fresh=True)
    return {
        "status": report.status,
        **{r.name: (r.status, r.detail) for r in report.checks},
    }


@pytest.mark.django_db
def test_the_readiness_checks_pass(tmp_path: Path) -> None:
    assert readiness(tmp_path) == {
        "status": "pass",
        "events:broker": ("pass", None),
        "events:outbox": ("pass", None),
    }


# The probe runs its checks in a pool thread: it must see committed rows.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("age", "status"), [(5, "pass"), (40, "warn"), (400, "fail")])
def test_the_outbox_check_follows_the_age_of_the_oldest_unsent_event(
    tmp_path: Path, age: int, status: str
) -> None:
    with override_settings(MICROKIT=events_settings(SEND_ON_COMMIT=False)):
        old = publish(PLACED, {}, key="1")
        publish(PLACED, {}, key="2")
        sent = publish(PLACED, {}, key="3")
    now = timezone.now()
    OutboxEvent.objects.filter(id=old.id).update(
        created_at=now - timedelta(seconds=age)
    )
    # A sent row, however old, is no lag.
    OutboxEvent.objects.filter(id=sent.id).update(
        created_at=now - timedelta(days=1), sent_at=now
    )
    assert outbox_lag() == pytest.approx(age, abs=2)
    found = readiness(tmp_path)
    assert found["events:outbox"][0] == status
    if status != "pass":
        assert f"The oldest unsent event is {age}" in found["events:outbox"][1]


@pytest.mark.django_db
def test_no_unsent_event_is_no_lag() -> None:
    assert outbox_lag() == 0.0


@pytest.mark.django_db
def test_the_broker_check_fails_when_the_broker_is_unreachable(tmp_path: Path) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}//"
    found = readiness(tmp_path, BROKER_URL=url, PUBLISH_TIMEOUT=1)
    assert found["status"] == "fail"
    assert found["events:broker"][0] == "fail"
    assert "The events broker is unreachable" in found["events:broker"][1]


def test_an_events_check_has_an_alias() -> None:
    with pytest.raises(ValueError, match="alias is one of"):
        Events("queue")


# --- system checks -----------------------------------------------------------


def ids(messages: list[CheckMessage]) -> list[str]:
    return [message.id or "" for message in messages]


def publishing(**events: Any) -> list[str]:
    with override_settings(MICROKIT=events_settings(**events)):
        return ids(check_publishing())


def test_sound_settings_pass() -> None:
    assert publishing() == []


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ({"TRANSPORT_CLASS": "no.such.Transport"}, ["django_microkit.E082"]),
        (
            {"TRANSPORT_CLASS": "django_microkit.events.relay.Relay"},
            ["django_microkit.E082"],
        ),
        ({"PUBLISH_TIMEOUT": 0}, ["django_microkit.E083"]),
        ({"RELAY_INTERVAL": -1}, ["django_microkit.E083"]),
        ({"RETRY_BACKOFF": 0}, ["django_microkit.E083"]),
        ({"RELAY_BATCH_SIZE": 0}, ["django_microkit.E083"]),
        ({"MAX_EVENT_SIZE": 0}, ["django_microkit.E083"]),
        ({"OUTBOX_RETENTION": -1}, ["django_microkit.E083"]),
        ({"LAG_WARN": 0}, ["django_microkit.E084"]),
        ({"LAG_WARN": 400, "LAG_FAIL": 300}, ["django_microkit.E084"]),
        ({"RETRY_BACKOFF": 10, "RETRY_BACKOFF_MAX": 5}, ["django_microkit.W080"]),
        # A value of the wrong type is E003's (check_settings), not reported twice.
        ({"PUBLISH_TIMEOUT": "5", "LAG_WARN": "x"}, []),
    ],
)
def test_publishing_checks(events: dict[str, Any], expected: list[str]) -> None:
    assert publishing(**events) == expected


def test_the_range_message_names_the_key() -> None:
    with override_settings(MICROKIT=events_settings(RELAY_BATCH_SIZE=0)):
        (message,) = check_publishing()
    assert message.msg == "MICROKIT['EVENTS']['RELAY_BATCH_SIZE'] is 0."
    assert message.hint == "Use at least 1."


def deploy(microkit: dict[str, Any]) -> list[str]:
    with override_settings(MICROKIT=microkit):
        return ids(check_publishing_deploy())


def test_deploy_needs_a_broker_a_name_and_a_key() -> None:
    assert deploy(events_settings(BROKER_URL="amqp://rabbitmq//")) == []
    assert deploy(events_settings()) == ["django_microkit.E085"]
    assert deploy({"EVENTS": {"BROKER_URL": "amqp://rabbitmq//"}}) == [
        "django_microkit.E080",
        "django_microkit.W081",
    ]
    # Another transport has no BROKER_URL to miss.
    other = events_settings(TRANSPORT_CLASS="tests.events_transports.FlakyTransport")
    assert deploy(other) == []
    # A broken SERVICE_AUTH is the service-auth checks' to report.
    broken = events_settings(BROKER_URL="amqp://rabbitmq//")
    broken["SERVICE_AUTH"]["SIGNING_KEYS"] = [{"kid": "x", "alg": "none"}]
    assert deploy(broken) == []


@pytest.mark.parametrize("check", [check_publishing, check_publishing_deploy])
def test_the_checks_are_silent_without_the_events_app(check: Any) -> None:
    apps = [app for app in _installed() if app != "django_microkit.events"]
    with override_settings(INSTALLED_APPS=apps, MICROKIT={}):
        assert check() == []


def _installed() -> list[str]:
    from django.conf import settings

    return list(settings.INSTALLED_APPS)
