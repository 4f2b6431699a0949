"""publish(), the relay and manage.py microkit_relay, on the embedded
filesystem transport (no broker server)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from django_microkit.events.envelope import decode_event
from django_microkit.events.kombu import KombuTransport
from django_microkit.events.models import OutboxEvent
from django_microkit.events.publish import publish
from django_microkit.events.relay import Relay, RoundResult
from django_microkit.events.transport import get_transport
from django_microkit.request_id import TraceContext, continued_context
from django_microkit.service_auth.keys import get_config
from tests.events_helpers import Listener, events_settings, listening
from tests.events_transports import FlakyTransport

pytestmark = pytest.mark.django_db

PLACED = "tests.order.placed.v1"
CANCELLED = "tests.order.cancelled.v1"
BINDINGS = {"tests": [PLACED, CANCELLED]}
OnCommit = Callable[..., Any]


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    FlakyTransport.refused = set()
    FlakyTransport.published = []
    with override_settings(
        MICROKIT=events_settings(
            FILESYSTEM_FOLDER=str(tmp_path),
            TRANSPORT_CLASS="tests.events_transports.FlakyTransport",
        )
    ):
        yield tmp_path
        get_transport().close()


@pytest.fixture
def listener(folder: Path) -> Iterator[Listener]:
    transport = get_transport()
    assert isinstance(transport, FlakyTransport)
    with listening(transport, "tests.events", BINDINGS) as listener:
        yield listener


def decoded(body: bytes) -> Any:
    return decode_event(body, get_config(), 256 * 1024)


def unsent() -> list[str]:
    return list(
        OutboxEvent.objects.filter(sent_at__isnull=True).values_list("key", flat=True)
    )


def test_publish_writes_the_signed_event_and_sends_it_after_commit(
    listener: Listener, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
    ):
        row = publish(PLACED, {"id": 7}, key="7")
        assert row.sent_at is None
        assert listener.bodies == []
    assert len(callbacks) == 1
    assert OutboxEvent.objects.get(id=row.id).sent_at is not None
    (body,) = listener.wait_for(1)
    event = decoded(body)
    assert (event.id, event.type, event.subject, event.data) == (
        str(row.event_id),
        PLACED,
        "7",
        {"id": 7},
    )
    assert body.decode() == row.body


def test_a_rolled_back_transaction_publishes_nothing(
    listener: Listener, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        publish(PLACED, {"id": 1}, key="1")
        raise RuntimeError("rolled back")
    assert callbacks == []
    assert not OutboxEvent.objects.exists()
    assert Relay().send_round() == RoundResult()
    assert listener.bodies == []


def test_the_event_continues_the_publishing_request(
    folder: Path, django_capture_on_commit_callbacks: OnCommit
) -> None:
    trace = TraceContext.new()
    with continued_context("req-42", trace):
        row = publish(PLACED, {}, key="1")
    event = decoded(row.body.encode())
    assert event.requestid == "req-42"
    assert event.trace_context.trace_id == trace.trace_id


def test_without_send_on_commit_the_relay_sends(
    folder: Path, django_capture_on_commit_callbacks: OnCommit
) -> None:
    settings = events_settings(FILESYSTEM_FOLDER=str(folder), SEND_ON_COMMIT=False)
    with override_settings(MICROKIT=settings):
        transport = get_transport()
        assert isinstance(transport, KombuTransport)
        with listening(transport, "tests.events", BINDINGS) as listener:
            with django_capture_on_commit_callbacks(execute=True) as callbacks:
                publish(PLACED, {"n": 1}, key="a")
            assert callbacks == []
            assert unsent() == ["a"]
            assert Relay().send_round() == RoundResult(sent=1)
            assert unsent() == []
            assert len(listener.wait_for(1)) == 1
        get_transport().close()


def test_a_failed_send_on_commit_leaves_the_row_to_the_relay(
    listener: Listener,
    django_capture_on_commit_callbacks: OnCommit,
    caplog: pytest.LogCaptureFixture,
) -> None:
    FlakyTransport.refused = {PLACED}
    with django_capture_on_commit_callbacks(execute=True):
        publish(PLACED, {}, key="a")
    row = OutboxEvent.objects.get()
    assert (row.sent_at, row.attempts) == (None, 1)
    assert row.last_error == f"{PLACED} was not confirmed"
    assert row.next_attempt_at is not None and row.next_attempt_at > timezone.now()
    assert "Sending the event" in caplog.text
    FlakyTransport.refused = set()
    # Not due yet: the round leaves it.
    assert Relay().send_round() == RoundResult()
    OutboxEvent.objects.update(next_attempt_at=timezone.now())
    assert Relay().send_round() == RoundResult(sent=1)
    assert len(listener.wait_for(1)) == 1


def test_an_error_after_commit_is_only_logged(
    folder: Path,
    django_capture_on_commit_callbacks: OnCommit,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = events_settings(
        FILESYSTEM_FOLDER=str(folder), TRANSPORT_CLASS="no.such.Transport"
    )
    with (
        override_settings(MICROKIT=settings),
        django_capture_on_commit_callbacks(execute=True),
    ):
        publish(PLACED, {}, key="a")
    assert unsent() == ["a"]
    assert "the relay will send it" in caplog.text


@pytest.mark.parametrize(
    ("event_type", "data", "key", "message"),
    [
        ("orders.order.placed.v1", {}, "1", "must start with this service's name"),
        ("tests.placed", {}, "1", "<service>.<entity>"),
        (PLACED, {}, "", "key"),
        (PLACED, {"x": float("inf")}, "1", "Out of range"),
        (PLACED, {"blob": "x" * 300_000}, "1", "MAX_EVENT_SIZE"),
    ],
)
def test_publish_refuses_bad_events_in_the_callers_transaction(
    folder: Path, event_type: str, data: Any, key: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        publish(event_type, data, key=key)
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SERVICE_NAME": ""}, "SERVICE_NAME"),
        ({"SERVICE_AUTH": {}}, "SIGNING_KEYS"),
    ],
)
def test_publish_needs_a_name_and_a_signing_key(
    folder: Path, change: dict[str, Any], message: str
) -> None:
    with (
        override_settings(MICROKIT={**events_settings(), **change}),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        publish(PLACED, {}, key="1")
    assert not OutboxEvent.objects.exists()


def test_events_of_one_key_keep_their_order(
    listener: Listener, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with transaction.atomic():
        for n in range(30):
            publish(PLACED, {"n": n}, key=f"k{n % 3}")
    assert Relay().send_round() == RoundResult(sent=30)
    bodies = listener.wait_for(30)
    events = [decoded(body) for body in bodies]
    for key in ("k0", "k1", "k2"):
        numbers = [event.data["n"] for event in events if event.subject == key]
        assert numbers == sorted(numbers) and len(numbers) == 10


def test_a_failing_row_holds_back_the_later_rows_of_its_key_only(
    listener: Listener,
) -> None:
    with transaction.atomic():
        publish(CANCELLED, {"n": 0}, key="a")
        publish(PLACED, {"n": 1}, key="a")
        publish(PLACED, {"n": 2}, key="b")
    FlakyTransport.refused = {CANCELLED}
    # The first row fails: the round ends, nothing else of it is sent.
    assert Relay().send_round() == RoundResult(failed=1, deferred=2)
    # The next round skips the backed-off row, and so the rest of key "a".
    assert Relay().send_round() == RoundResult(sent=1, deferred=1)
    assert [decoded(b).data for b in listener.wait_for(1)] == [{"n": 2}]
    assert unsent() == ["a", "a"]
    # send_events() of a row whose key has an earlier unsent row defers it.
    later = OutboxEvent.objects.get(type=PLACED, key="a")
    assert Relay().send_events([later.id]) == RoundResult(deferred=1)
    FlakyTransport.refused = set()
    OutboxEvent.objects.update(next_attempt_at=None)
    assert Relay().send_round() == RoundResult(sent=2)
    assert [decoded(b).data["n"] for b in listener.wait_for(3)] == [2, 0, 1]
    failed = OutboxEvent.objects.get(type=CANCELLED)
    assert (failed.attempts, failed.last_error) == (1, f"{CANCELLED} was not confirmed")


def test_rounds_take_a_batch_at_a_time(folder: Path) -> None:
    settings = events_settings(FILESYSTEM_FOLDER=str(folder), RELAY_BATCH_SIZE=4)
    with override_settings(MICROKIT=settings):
        with transaction.atomic():
            for n in range(10):
                publish(PLACED, {"n": n}, key=str(n))
        relay = Relay()
        assert relay.send_round() == RoundResult(sent=4)
        assert relay.run_once() is True
        assert relay.run_once() is False  # 2 left: not a full round
        assert relay.run_once() is False  # nothing left
        assert unsent() == []
        get_transport().close()


def test_backoff_doubles_up_to_its_maximum(folder: Path) -> None:
    settings = events_settings(RETRY_BACKOFF=0.5, RETRY_BACKOFF_MAX=3)
    with override_settings(MICROKIT=settings):
        assert [Relay().backoff(n) for n in (1, 2, 3, 4, 5, 1000)] == [
            0.5,
            1.0,
            2.0,
            3.0,
            3.0,
            3.0,
        ]


def test_prune_deletes_only_rows_sent_before_the_retention(folder: Path) -> None:
    with transaction.atomic():
        old, recent, waiting = (publish(PLACED, {}, key=str(n)) for n in range(3))
    now = timezone.now()
    OutboxEvent.objects.filter(id=old.id).update(sent_at=now - timedelta(days=8))
    OutboxEvent.objects.filter(id=recent.id).update(sent_at=now - timedelta(days=6))
    assert Relay().prune() == 1
    assert set(OutboxEvent.objects.values_list("id", flat=True)) == {
        recent.id,
        waiting.id,
    }
    assert Relay().prune() == 0


def test_run_prunes_and_stops_when_asked(folder: Path) -> None:
    row = publish(PLACED, {}, key="1")
    OutboxEvent.objects.filter(id=row.id).update(
        sent_at=timezone.now() - timedelta(days=30)
    )
    publish(PLACED, {}, key="2")
    rounds = []

    def should_stop() -> bool:
        rounds.append(1)
        return len(rounds) > 3

    Relay(transport=get_transport()).run(should_stop=should_stop)
    ((key, sent_at),) = OutboxEvent.objects.values_list("key", "sent_at")
    assert key == "2" and sent_at is not None


def test_a_failing_round_is_logged_and_the_loop_goes_on(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish(PLACED, {}, key="1")
    settings = events_settings(TRANSPORT_CLASS="no.such.Class")
    with (
        override_settings(MICROKIT=settings),
        caplog.at_level(logging.ERROR, "django_microkit.events"),
    ):
        assert Relay().run_once() is False
    assert "A relay round failed." in caplog.text
    assert unsent() == ["1"]


def test_the_relay_command_once(
    listener: Listener, capsys: pytest.CaptureFixture[str]
) -> None:
    with transaction.atomic():
        for n in range(3):
            publish(PLACED, {"n": n}, key="a")
    call_command("microkit_relay", "--once")
    assert capsys.readouterr().out == "Sent 3 events.\n"
    assert unsent() == []
    assert len(listener.wait_for(3)) == 3


def test_the_relay_command_once_stops_at_a_failure(
    listener: Listener, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(PLACED, {}, key="a")
    FlakyTransport.refused = {PLACED}
    call_command("microkit_relay", "--once")
    assert capsys.readouterr().out == "Sent 0 events.\n"
    assert unsent() == ["a"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_relay_command_runs_until_a_signal(listener: Listener, signum: int) -> None:
    publish(PLACED, {}, key="a")
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signum))
    timer.start()
    try:
        call_command("microkit_relay")
    finally:
        timer.cancel()
        for s, handler in previous.items():
            signal.signal(s, handler)
    assert unsent() == []
    assert json.loads(listener.wait_for(1)[0])["subject"] == "a"
