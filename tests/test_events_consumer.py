"""The worker side of events: handlers, the inbox, retries, dead letters, the
worker loop and the in-memory broker of ``django_microkit.testing``."""

from __future__ import annotations

import dataclasses
import io
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
from django.test import override_settings

from django_microkit.events.consumer import Consumer, Worker, handler_backoff
from django_microkit.events.envelope import encode_event, new_event
from django_microkit.events.handlers import (
    EventHandler,
    FunctionHandler,
    get_handlers,
)
from django_microkit.events.models import DeadLetter, DeliveryAttempt, InboxEvent
from django_microkit.events.publish import publish
from django_microkit.events.transport import OutgoingEvent, TransportError
from django_microkit.service_auth.keys import load_key
from django_microkit.testing import EventCapture, capture_events
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


def test_a_message_nested_past_the_parsers_limit_is_a_dead_letter_once(
    events: EventCapture,
) -> None:
    # Delivered, then delivered again unsettled: neither the decoding nor the
    # redelivery count may raise, or the worker would requeue it for ever.
    body = b"[" * 100_000
    events.transport.pending.extend([body])
    events.run_worker()
    (letter,) = DeadLetter.objects.all()
    assert letter.reason == "not_json"
    assert not events.transport.pending
    assert events.transport.consumer(trust_self=False).count_redelivery(body) is None


def test_a_database_error_in_a_handler_gives_the_message_back(
    events: EventCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database away is no fault of the event's: no attempt is used up,
    # no dead letter is written, the broker delivers the message again.
    from django.db import OperationalError

    def away(self: Any, event: Any, data: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(event_handlers.WidgetCreated, "handle", away)
    body = signed(CREATED, widget()).encode()
    with pytest.raises(OperationalError):
        events.deliver(body)
    assert not DeadLetter.objects.exists()
    assert not InboxEvent.objects.exists()


def test_a_dead_letter_keeps_what_can_be_read_of_a_refused_event(
    events: EventCapture,
) -> None:
    events.deliver(_poison()["unknown_producer"])
    letter = DeadLetter.objects.get()
    assert (letter.source, letter.type) == ("evil", "evil.widget.created.v1")
    assert letter.event_id
    events.deliver(json.dumps([1, 2]))
    last = DeadLetter.objects.order_by("id").last()
    assert last is not None
    assert (last.reason, last.source, last.type) == ("invalid_envelope", "", "")


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


def test_the_worker_gives_a_message_back_when_the_database_is_away(
    events: EventCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = signed("orders.widget.deleted.v1", widget()).encode()
    worker = Worker(transport=events.transport)

    def broken(*args: Any, **kwargs: Any) -> DeadLetter:
        raise ConnectionError("the database is away")

    # The dead letter cannot be written: the message must not be acked.
    monkeypatch.setattr(worker.consumer, "dead_letter", broken)
    events.transport.pending.append(body)
    timer = threading.Timer(0.3, worker.stop)
    timer.start()
    worker.run()
    assert body in events.transport.pending
    assert not DeadLetter.objects.exists()


def test_the_worker_beats_its_health_file(events: EventCapture, tmp_path: Path) -> None:
    health = tmp_path / "worker.alive"
    events.transport.pending.append(signed(CREATED, widget()).encode())
    events.transport.broker.until_idle = True
    Worker(transport=events.transport, health_file=health).run()
    assert health.exists()
    assert time.time() - health.stat().st_mtime < 5
    call_command("microkit_health", "--health-file", str(health))
    os.utime(health, (time.time() - 120, time.time() - 120))
    with pytest.raises(CommandError, match="last heartbeat"):
        call_command("microkit_health", "--health-file", str(health))
    with pytest.raises(CommandError, match="no heartbeat file"):
        call_command("microkit_health", "--health-file", str(tmp_path / "missing"))


def test_a_health_file_that_cannot_be_written_does_not_stop_the_worker(
    events: EventCapture, tmp_path: Path
) -> None:
    events.transport.pending.append(signed(CREATED, widget()).encode())
    events.transport.broker.until_idle = True
    Worker(transport=events.transport, health_file=tmp_path / "no" / "file").run()
    assert Widget.objects.count() == 1


def test_the_worker_prunes_old_inbox_rows(events: EventCapture) -> None:
    now = datetime.now(tz=timezone.utc)
    old = now - timedelta(days=31)
    for index, handled_at in enumerate([old, old, now]):
        InboxEvent.objects.create(
            source="orders", event_id=str(index), type=CREATED, handled_at=handled_at
        )
    events.transport.broker.until_idle = True
    Worker(transport=events.transport).run()
    assert list(InboxEvent.objects.values_list("event_id", flat=True)) == ["2"]
    assert Consumer().prune_inbox(now + timedelta(days=60)) == 1


def test_the_worker_keeps_going_when_pruning_fails(
    events: EventCapture, monkeypatch: pytest.MonkeyPatch, log_lines: Any
) -> None:
    worker = Worker(transport=events.transport)

    def broken(now: datetime | None = None) -> int:
        raise ConnectionError("the database is away")

    monkeypatch.setattr(worker.consumer, "prune_inbox", broken)
    events.transport.pending.append(signed(CREATED, widget()).encode())
    events.transport.broker.until_idle = True
    worker.run()
    assert Widget.objects.count() == 1
    assert "inbox_prune_failed" in [line["event"] for line in log_lines.all()]


def test_sigterm_ends_the_consume_command_after_the_current_message(
    events: EventCapture,
) -> None:
    events.transport.pending.append(signed(CREATED, widget("slow")).encode())
    os.environ["MICROKIT_TEST_HANDLER_PAUSE"] = "0.5"
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        timer.start()
        call_command("microkit_consume")
    finally:
        del os.environ["MICROKIT_TEST_HANDLER_PAUSE"]
        signal.signal(signal.SIGTERM, previous)
    assert list(Widget.objects.values_list("name", flat=True)) == ["slow"]
    assert not events.transport.pending


def test_a_burst_of_signals_still_ends_the_consume_command(
    events: EventCapture,
) -> None:
    # A supervisor's SIGTERM and a terminal's SIGINT often arrive together:
    # the handler takes no lock, so the later signals cannot deadlock it.
    events.transport.pending.append(signed(CREATED, widget("burst")).encode())
    os.environ["MICROKIT_TEST_HANDLER_PAUSE"] = "0.3"

    def burst() -> None:
        # Only once the command installed its handlers (the default ones
        # would end the test run).
        while signal.getsignal(signal.SIGINT) is previous[signal.SIGINT]:
            time.sleep(0.01)
        for signum in [signal.SIGTERM, signal.SIGINT] * 10:
            os.kill(os.getpid(), signum)

    timer = threading.Timer(0.1, burst)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        timer.start()
        call_command("microkit_consume")
    finally:
        timer.join()
        del os.environ["MICROKIT_TEST_HANDLER_PAUSE"]
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert list(Widget.objects.values_list("name", flat=True)) == ["burst"]


@pytest.mark.django_db(transaction=True)
def test_the_consume_command_runs_the_relay_too(events: EventCapture) -> None:
    with override_settings(MICROKIT=_with_orders(SEND_ON_COMMIT=False)):
        publish("tests.widget.counted.v1", {"count": 1}, key="c")
    assert events.types == []
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    previous = signal.getsignal(signal.SIGINT)
    try:
        timer.start()
        call_command("microkit_consume", "--relay")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert events.types == ["tests.widget.counted.v1"]


def test_the_consume_command_needs_handlers(events: EventCapture) -> None:
    with (
        override_settings(MICROKIT=_with_orders(HANDLERS={})),
        pytest.raises(CommandError, match="HANDLERS"),
    ):
        call_command("microkit_consume")


# --- replay -----------------------------------------------------------------------


def test_a_dead_letter_replayed_after_a_fix_is_handled_once(
    events: EventCapture,
) -> None:
    event_handlers.FAILURES["later"] = 3
    events.deliver(signed(CREATED, widget("later")))
    letter = DeadLetter.objects.get()
    assert letter.reason == "handler_failed"
    outcome = Consumer().replay(letter)
    assert outcome.status == "handled"
    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert Widget.objects.filter(name="later").count() == 1
    assert Consumer().replay(letter).status == "duplicate"
    assert Widget.objects.filter(name="later").count() == 1


def test_a_replay_that_fails_again_keeps_the_dead_letter(
    events: EventCapture,
) -> None:
    events.deliver(b"not json")
    letter = DeadLetter.objects.get()
    outcome = Consumer().replay(letter)
    assert outcome.status == "rejected"
    letter.refresh_from_db()
    assert (letter.attempts, letter.replayed_at) == (2, None)


# --- the dead-letter command ---------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("microkit_dead_letters", *args, stdout=out)
    return out.getvalue()


def test_dead_letters_are_listed_shown_replayed_and_purged(
    events: EventCapture,
) -> None:
    assert "(no dead letters)" in run("list")
    event_handlers.FAILURES["later"] = 3
    events.deliver(signed(CREATED, widget("later")))
    events.deliver(b"not json")
    later, poison = DeadLetter.objects.order_by("id")
    listing = run("list")
    assert "handler_failed" in listing and "not_json" in listing
    assert CREATED in listing
    assert run("list", "--reason", "not_json").count("not_json") == 1
    assert CREATED not in run("list", "--type", "orders.other.thing.v1")
    shown = run("show", str(later.pk))
    assert "error: ConnectionError: the warehouse is away" in shown
    assert '"name": "later"' in shown
    assert "not json" in run("show", str(poison.pk))
    with pytest.raises(CommandError, match="no dead letter"):
        run("show", "999999")
    with pytest.raises(CommandError, match="Name dead letters"):
        run("replay")
    assert f"{later.pk}: handled" in run("replay", str(later.pk))
    assert "(replayed)" in run("list", "--replayed")
    assert "handler_failed" not in run("list")
    with pytest.raises(CommandError, match="1 dead letters could not be handled"):
        run("replay", "--all")
    assert "Deleted 1 dead letters." in run("purge", "--replayed")
    assert "Deleted 0 dead letters." in run("purge", "--older-than", "1")
    assert "Deleted 1 dead letters." in run("purge", "--all")
    assert not DeadLetter.objects.exists()


def test_purge_by_id(events: EventCapture) -> None:
    events.deliver(b"one")
    events.deliver(b"two")
    first = DeadLetter.objects.order_by("id").first()
    assert first is not None
    assert "Deleted 1 dead letters." in run("purge", str(first.pk))
    assert DeadLetter.objects.count() == 1


# --- the in-memory broker ----------------------------------------------------


def test_capture_events_records_what_is_published_after_commit(
    events: EventCapture, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        publish("tests.widget.counted.v1", {"count": 2}, key="c1")
    assert events.types == ["tests.widget.counted.v1"]
    (event,) = events.of_type("tests.widget.counted.v1")
    assert (event.source, event.subject, event.data) == ("tests", "c1", {"count": 2})
    assert events.of_type(CREATED) == []


def test_deliver_true_hands_own_events_to_own_handlers(
    django_capture_on_commit_callbacks: Any,
) -> None:
    handlers = {"tests.widget.created.v1": HANDLERS[CREATED]}
    with (
        override_settings(MICROKIT=events_settings(HANDLERS=handlers)),
        capture_events(deliver=True) as events,
        django_capture_on_commit_callbacks(execute=True),
    ):
        publish("tests.widget.created.v1", widget("mine"), key="m")
    assert [outcome.status for outcome in events.outcomes if outcome] == ["handled"]
    assert Widget.objects.get().name == "mine"


def test_events_of_handled_types_wait_for_a_worker(
    django_capture_on_commit_callbacks: Any,
) -> None:
    handlers = {"tests.widget.created.v1": HANDLERS[CREATED]}
    with (
        override_settings(MICROKIT=events_settings(HANDLERS=handlers)),
        capture_events() as events,
    ):
        with django_capture_on_commit_callbacks(execute=True):
            publish("tests.widget.created.v1", widget("queued"), key="q")
        assert not Widget.objects.exists()
        assert len(events.transport.pending) == 1
        events.run_worker()
    assert Widget.objects.get().name == "queued"


def test_a_broker_that_is_down_refuses_every_call(events: EventCapture) -> None:
    transport = events.transport
    transport.down = True
    assert transport.down
    with pytest.raises(TransportError):
        transport.check()
    with pytest.raises(TransportError):
        transport.publish(OutgoingEvent("1", CREATED, "k", "{}"))
    transport.down = False
    transport.check()
    transport.close()
    assert len(transport.sent) == 0


# --- handlers and their table -----------------------------------------------


def test_the_handler_table_binds_types_per_producer() -> None:
    handlers = {
        **HANDLERS,
        "billing.invoice.paid.v2": "tests.testapp.event_handlers.widget_resized",
    }
    with override_settings(MICROKIT=_with_orders(HANDLERS=handlers)):
        table = get_handlers()
    assert dict(table.bindings) == {
        "billing": ("billing.invoice.paid.v2",),
        "orders": ("orders.widget.created.v1", "orders.widget.resized.v1"),
    }
    assert isinstance(table.get(CREATED), event_handlers.WidgetCreated)
    assert repr(table.get("orders.widget.resized.v1")) == (
        "FunctionHandler(widget_resized)"
    )


def test_a_broken_handler_table_fails_at_first_use() -> None:
    with (
        override_settings(MICROKIT=_with_orders(HANDLERS={"Bad": "x.y"})),
        pytest.raises(ImproperlyConfigured, match="is not <service>"),
    ):
        get_handlers()


def test_handler_instances_and_the_base_class() -> None:
    instance = event_handlers.WidgetCreated()
    with override_settings(MICROKIT=_with_orders(HANDLERS={CREATED: instance})):
        assert get_handlers().get(CREATED) is instance
    event = new_event("tests", "tests.widget.created.v1", {"a": 1}, "k")
    base = EventHandler()
    assert base.validate(event) == {"a": 1}
    assert base.get_serializer_context(event) == {"event": event}
    with pytest.raises(NotImplementedError, match="EventHandler must define"):
        base.handle(event, {})
    assert FunctionHandler(print).function is print


def test_deliver_true_trusts_an_hmac_signing_key_too(
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings = events_settings(HANDLERS={"tests.widget.created.v1": HANDLERS[CREATED]})
    secret = "s" * 32
    settings["SERVICE_AUTH"] = {
        "SIGNING_KEYS": [{"kid": "tests-h", "alg": "HS256", "key": {"value": secret}}]
    }
    with (
        override_settings(MICROKIT=settings),
        capture_events(deliver=True) as events,
        django_capture_on_commit_callbacks(execute=True),
    ):
        publish("tests.widget.created.v1", widget("hmac"), key="h")
    assert [outcome.status for outcome in events.outcomes if outcome] == ["handled"]


# --- redeliveries -------------------------------------------------------------------


def test_an_event_that_keeps_stopping_its_worker_becomes_a_dead_letter(
    events: EventCapture,
) -> None:
    body = signed(CREATED, widget("crash"))
    consumer = Consumer()
    # MAX_ATTEMPTS is 3: delivered twice more (three times in all), it may
    # still be handled; a fourth delivery makes it a dead letter.
    assert consumer.count_redelivery(body) is None
    assert consumer.count_redelivery(body) is None
    outcome = consumer.count_redelivery(body.encode())
    assert outcome is not None and outcome.status == "failed"
    letter = DeadLetter.objects.get()
    assert (letter.reason, letter.attempts) == ("handler_failed", 4)
    assert letter.error.startswith("Delivered 4 times without being settled")
    assert not DeliveryAttempt.objects.exists()
    assert not Widget.objects.exists()


def test_a_handled_event_redelivered_often_is_a_duplicate(events: EventCapture) -> None:
    body = signed(CREATED, widget())
    events.deliver(body)
    consumer = Consumer()
    for _ in range(5):
        assert consumer.count_redelivery(body) is None
    attempt = DeliveryAttempt.objects.get()
    assert str(attempt) == f"orders {json.loads(body)['id']} (5)"
    assert not DeadLetter.objects.exists()


def test_a_redelivered_message_that_is_not_an_event_is_not_counted(
    events: EventCapture,
) -> None:
    assert Consumer().count_redelivery(b"not json") is None
    assert not DeliveryAttempt.objects.exists()


def test_the_worker_counts_a_message_it_gave_back_and_forgets_it_once_handled(
    events: EventCapture,
) -> None:
    event_handlers.FAILURES["again"] = 1
    body = signed(CREATED, widget("again")).encode()
    events.transport.pending.append(body)
    with override_settings(MICROKIT=_with_orders(HANDLER_BACKOFF=10)):
        worker = Worker(transport=events.transport)
        threading.Timer(0.3, worker.stop).start()
        worker.run()  # stopped in the backoff: given back
    assert DeliveryAttempt.objects.count() == 0
    events.run_worker()  # delivered again, counted, handled, forgotten
    assert Widget.objects.filter(name="again").count() == 1
    assert not DeliveryAttempt.objects.exists()
    assert not events.transport.pending


def test_old_delivery_counts_are_pruned_with_the_inbox(events: EventCapture) -> None:
    old = datetime.now(tz=timezone.utc) - timedelta(days=31)
    DeliveryAttempt.objects.create(source="orders", event_id="1", last_at=old)
    Consumer().prune_inbox()
    assert not DeliveryAttempt.objects.exists()
