"""The worker: each message from the broker handled once, in one transaction.

For each delivery the :class:`Consumer` verifies the envelope
(:func:`~django_microkit.events.envelope.decode_event` with this service's
peers), finds the type's handler, and in one database transaction inserts the
:class:`~django_microkit.events.models.InboxEvent` row of ``(source, id)`` and
runs the handler; the :class:`Worker` acks the message only after that
transaction committed. A redelivered event finds its inbox row and has no
second effect.

A handler that raises is retried in place, ``HANDLER_BACKOFF * 2 ** (n - 1)``
seconds apart (at most ``HANDLER_BACKOFF_MAX``), ``MAX_ATTEMPTS`` times in all;
then the event is a :class:`~django_microkit.events.models.DeadLetter`
(``handler_failed``). Retrying in place keeps the order of one key's events.
Poison (too large, not JSON, a bad envelope or signature, an unknown producer
or type, data the handler's serializer refuses) is a dead letter at once. The
message is acked in every case: nothing is lost, since the dead letter holds
it, and nothing stalls the queue.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import structlog
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from structlog.contextvars import bound_contextvars

from django_microkit.conf import EventsSettings, microkit_settings
from django_microkit.events.envelope import Event, EventRejected, decode_event
from django_microkit.events.handlers import (
    HandlerTable,
    InvalidEventData,
    get_handlers,
)
from django_microkit.events.models import DeadLetter, DeliveryAttempt, InboxEvent
from django_microkit.events.transport import (
    Delivery,
    Transport,
    get_transport,
    queue_name,
)
from django_microkit.metrics.families import EVENTS_CONSUMED, EVENTS_DEAD_LETTERED
from django_microkit.request_id import TRACEPARENT_HEADER, TRACESTATE_HEADER
from django_microkit.service_auth.keys import ServiceAuthConfig, get_config
from django_microkit.tracing import REQUEST_ID_KEY, consumer_span

__all__ = ["Consumer", "Outcome", "Worker", "handler_backoff"]

_log = structlog.get_logger("django_microkit.events")

_MAX_ERROR = 500
_MAX_ATTRIBUTE = 255
#: Seconds between two prunings of the inbox by a running worker.
_PRUNE_EVERY = 300.0
_PRUNE_BATCH = 1000
#: Seconds between two touches of the health file, at most.
_HEARTBEAT_EVERY = 1.0
# Seconds between looks at the stop flag while waiting out a backoff.
_STOP_POLL = 0.2


@dataclass(frozen=True)
class Outcome:
    """What became of one message.

    ``status``: ``handled`` (the handler ran and its transaction committed),
    ``duplicate`` (the inbox had the event already: no effect), ``rejected``
    (poison: a dead letter at once) or ``failed`` (the handler raised).
    ``reason`` is the dead letter's reason for the last two, ``error`` says
    what went wrong, ``event`` is the verified event when there was one.
    """

    status: Literal["handled", "duplicate", "rejected", "failed"]
    reason: str = ""
    error: str = ""
    event: Event | None = None

    @property
    def is_dead(self) -> bool:
        """The message is a dead letter if this is its last attempt."""
        return self.status in ("rejected", "failed")


class _Duplicate(Exception):
    pass


def handler_backoff(attempts: int, settings: EventsSettings | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failure of a handler."""
    settings = settings or microkit_settings.EVENTS
    delay = float(settings["HANDLER_BACKOFF"]) * 2.0 ** max(attempts - 1, 0)
    return min(delay, float(settings["HANDLER_BACKOFF_MAX"]))


class Consumer:
    """Handles messages of this service's queue, through the inbox.

    Built from the settings by default; a test or a tool may pass its own
    handler table or service-auth config. Safe to share between threads
    (it keeps no state between messages).
    """

    def __init__(
        self,
        *,
        handlers: HandlerTable | None = None,
        service_auth: ServiceAuthConfig | None = None,
        settings: EventsSettings | None = None,
    ) -> None:
        self.handlers = handlers if handlers is not None else get_handlers()
        self.service_auth = service_auth if service_auth is not None else get_config()
        self.settings = settings if settings is not None else microkit_settings.EVENTS

    # -- one attempt -----------------------------------------------------------

    def process(
        self, body: bytes | str, *, attempts: int = 1, replay: bool = False
    ) -> Outcome:
        """Handle ``body`` once: verify it, then insert its inbox row and run its
        handler in one transaction, and log the outcome (with the event's
        request ID and trace). Writes no dead letter (see :meth:`receive`)."""
        try:
            event = decode_event(
                body, self.service_auth, int(self.settings["MAX_EVENT_SIZE"])
            )
        except EventRejected as exc:
            outcome = Outcome("rejected", exc.reason, exc.detail)
            self._log(outcome, attempts, replay=replay)
            return outcome
        with _event_context(event):
            outcome = self._process_event(event)
            self._log(outcome, attempts, replay=replay)
        if outcome.status == "handled":
            EVENTS_CONSUMED.labels(event.type).inc()
        return outcome

    def _process_event(self, event: Event) -> Outcome:
        handler = self.handlers.get(event.type)
        if handler is None:
            return Outcome(
                "rejected",
                str(DeadLetter.Reason.UNKNOWN_TYPE),
                f"This service has no handler for {event.type!r}.",
                event,
            )
        try:
            with transaction.atomic():
                try:
                    InboxEvent.objects.create(
                        source=event.source,
                        event_id=event.id,
                        type=event.type,
                        handled_at=datetime.now(tz=timezone.utc),
                    )
                except IntegrityError:
                    raise _Duplicate from None
                handler.handle(event, handler.validate(event))
        except _Duplicate:
            return Outcome("duplicate", event=event)
        except InvalidEventData as exc:
            error = _truncate(json.dumps(exc.detail, default=str))
            return Outcome(
                "rejected", str(DeadLetter.Reason.INVALID_DATA), error, event
            )
        except (OperationalError, InterfaceError):
            # The database is away, not the handler wrong: the message goes
            # back to the broker (Worker.on_message) rather than counting as
            # a failed attempt towards a dead letter.
            raise
        except Exception as exc:
            error = _truncate(f"{type(exc).__name__}: {exc}")
            return Outcome(
                "failed", str(DeadLetter.Reason.HANDLER_FAILED), error, event
            )
        return Outcome("handled", event=event)

    # -- a delivery: attempts, then maybe a dead letter ----------------------------

    def receive(
        self, body: bytes | str, *, wait: Callable[[float], bool] | None = None
    ) -> Outcome | None:
        """Handle ``body`` as a delivery: a failing handler is tried again after
        ``wait(seconds)`` up to ``MAX_ATTEMPTS`` times, and a message that is
        poison or keeps failing becomes a dead letter. ``wait`` returns
        ``False`` to give up early (the worker is stopping): then nothing is
        recorded and ``None`` returned, for the message to be delivered again.
        Without ``wait``, the backoff is slept through."""
        wait = wait or _sleep
        attempts = 0
        while True:
            attempts += 1
            outcome = self.process(body, attempts=attempts)
            if outcome.status != "failed" or attempts >= self._max_attempts():
                break
            if not wait(handler_backoff(attempts, self.settings)):
                return None
        if outcome.is_dead:
            self.dead_letter(body, outcome, attempts)
        return outcome

    def _max_attempts(self) -> int:
        return max(int(self.settings["MAX_ATTEMPTS"]), 1)

    def dead_letter(
        self, body: bytes | str, outcome: Outcome, attempts: int
    ) -> DeadLetter:
        """Record ``body`` as a dead letter for ``outcome`` (one not yet
        replayed is kept once: a redelivery of it adds no second row)."""
        text = body if isinstance(body, str) else body.decode("utf-8", "replace")
        text = text[: int(self.settings["MAX_EVENT_SIZE"])]
        event_id, source, event_type = _attributes(outcome.event, text)
        if event_id and source:
            existing: DeadLetter | None = DeadLetter.objects.filter(
                event_id=event_id, source=source, replayed_at__isnull=True
            ).first()
            if existing is not None:
                return existing
        # A label only for the types handled here: a refused message's type
        # is anybody's string, and each new one would be a new series.
        known = event_type if self.handlers.get(event_type) is not None else "_other"
        EVENTS_DEAD_LETTERED.labels(known).inc()
        letter: DeadLetter = DeadLetter.objects.create(
            reason=outcome.reason,
            error=outcome.error,
            attempts=attempts,
            event_id=event_id,
            source=source,
            type=event_type,
            body=text,
            created_at=datetime.now(tz=timezone.utc),
        )
        return letter

    def count_redelivery(self, body: bytes | str) -> Outcome | None:
        """Count a redelivery of ``body`` (a worker took it before and never
        settled it). Once it has been delivered ``MAX_ATTEMPTS`` times without
        being handled it is a dead letter (``handler_failed``) and that outcome
        is returned; ``None`` while it may be handled again."""
        text = body if isinstance(body, str) else body.decode("utf-8", "replace")
        event_id, source, _type = _attributes(None, text)
        if not (event_id and source):
            return None  # not an event: refused at once, whatever it did
        now = datetime.now(tz=timezone.utc)
        with transaction.atomic():
            attempt, _created = (
                DeliveryAttempt.objects.select_for_update().get_or_create(
                    source=source, event_id=event_id, defaults={"last_at": now}
                )
            )
            attempt.redeliveries += 1
            attempt.last_at = now
            attempt.save()
        deliveries = attempt.redeliveries + 1
        if deliveries <= self._max_attempts():
            return None
        if InboxEvent.objects.filter(source=source, event_id=event_id).exists():
            return None  # handled already: the redelivery is a duplicate
        outcome = Outcome(
            "failed",
            str(DeadLetter.Reason.HANDLER_FAILED),
            f"Delivered {deliveries} times without being settled: the worker "
            "handling it stopped each time.",
        )
        self._log(outcome, deliveries, replay=False)
        self.dead_letter(body, outcome, deliveries)
        self.forget_deliveries(body)
        return outcome

    def forget_deliveries(self, body: bytes | str) -> None:
        """Drop the redelivery count of ``body``, now settled."""
        text = body if isinstance(body, str) else body.decode("utf-8", "replace")
        event_id, source, _type = _attributes(None, text)
        DeliveryAttempt.objects.filter(source=source, event_id=event_id).delete()

    def replay(self, dead_letter: DeadLetter) -> Outcome:
        """Hand ``dead_letter``'s message to its handler again, once, through
        the inbox (an event handled meanwhile has no second effect). Handled or
        a duplicate: ``replayed_at`` is set. Otherwise the dead letter is kept
        with the new reason and error, one attempt more."""
        outcome = self.process(
            dead_letter.body, attempts=dead_letter.attempts + 1, replay=True
        )
        if outcome.is_dead:
            dead_letter.reason = outcome.reason
            dead_letter.error = outcome.error
            dead_letter.attempts += 1
        else:
            dead_letter.replayed_at = datetime.now(tz=timezone.utc)
        dead_letter.save()
        return outcome

    def prune_inbox(self, now: datetime | None = None) -> int:
        """Delete inbox rows older than ``INBOX_RETENTION`` seconds; how many."""
        now = now or datetime.now(tz=timezone.utc)
        cutoff = now - timedelta(seconds=int(self.settings["INBOX_RETENTION"]))
        DeliveryAttempt.objects.filter(last_at__lt=cutoff).delete()
        deleted = 0
        while True:
            batch = list(
                InboxEvent.objects.filter(handled_at__lt=cutoff)
                .order_by("handled_at")
                .values_list("pk", flat=True)[:_PRUNE_BATCH]
            )
            if not batch:
                return deleted
            deleted += InboxEvent.objects.filter(pk__in=batch).delete()[0]

    @staticmethod
    def _log(outcome: Outcome, attempts: int, *, replay: bool) -> None:
        fields: dict[str, Any] = {"attempts": attempts}
        if replay:
            fields["replay"] = True
        if outcome.status in ("handled", "duplicate"):
            _log.info(f"event_{outcome.status}", **fields)
        else:
            _log.warning(
                f"event_{outcome.status}",
                reason=outcome.reason,
                error=outcome.error,
                **fields,
            )


@contextmanager
def _event_context(event: Event) -> Iterator[None]:
    """Log lines and outgoing calls continue the event's request and trace;
    with tracing on, a consumer span (the child of the producer's) covers the
    handling."""
    headers = {
        TRACEPARENT_HEADER: event.traceparent,
        TRACESTATE_HEADER: event.tracestate,
        REQUEST_ID_KEY: event.requestid,
    }
    with (
        consumer_span(
            f"{event.type} process",
            headers,
            attributes={
                "messaging.operation.type": "process",
                "messaging.message.id": event.id,
                "messaging.destination.name": event.type,
                "cloudevents.event_source": event.source,
                "cloudevents.event_subject": event.subject,
            },
        ),
        bound_contextvars(
            event_id=event.id, event_type=event.type, event_source=event.source
        ),
    ):
        yield


def _attributes(event: Event | None, text: str) -> tuple[str, str, str]:
    """``(id, source, type)`` of a dead letter: the event's, or as far as they
    can be read from a message that was refused."""
    if event is not None:
        return event.id, event.source, event.type
    try:
        attributes = json.loads(text)
    except (ValueError, RecursionError):
        return "", "", ""
    if not isinstance(attributes, dict):
        return "", "", ""
    found = []
    for name in ("id", "source", "type"):
        value = attributes.get(name)
        found.append(value[:_MAX_ATTRIBUTE] if isinstance(value, str) else "")
    return found[0], found[1], found[2]


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def _refresh_connections() -> None:
    """Drop database connections that broke or outlived ``CONN_MAX_AGE``, as
    Django does around each request, so a restarted database costs a
    redelivery, not the worker. One inside a transaction (a test's) is left."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True


class Worker:
    """Consumes this service's queue until :meth:`stop`.

    Binds the queue (``QUEUE``, default ``<service>.events``) to each
    producer's exchange for the types of ``HANDLERS``, hands each message to
    the :class:`Consumer` and acks it once that is done (or gives it back,
    when the worker stops during a backoff or the database is away). While
    it runs it touches ``health_file`` at least every few seconds (a liveness
    probe reads its age: ``manage.py microkit_health --health-file``) and
    prunes the inbox every five minutes.
    """

    def __init__(
        self,
        *,
        consumer: Consumer | None = None,
        transport: Transport | None = None,
        health_file: str | Path | None = None,
    ) -> None:
        self.consumer = consumer or Consumer()
        self.transport = transport or get_transport()
        self.health_file = Path(health_file) if health_file else None
        # A plain flag, not a threading.Event: the signal handler sets it, and
        # a handler that takes a lock deadlocks when a second signal arrives
        # while the first one holds it.
        self._stopping = False
        self._last_beat = 0.0
        self._next_prune = 0.0

    def stop(self) -> None:
        """Ask the worker to finish the current message and return (safe to
        call from a signal handler and from any thread)."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def install_signal_handlers(self) -> None:
        """Stop on SIGTERM and SIGINT (call from the main thread)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *args: self.stop())

    def run(self) -> None:
        """Consume until :meth:`stop`; the current message is finished first."""
        bindings = {
            producer: list(types)
            for producer, types in self.consumer.handlers.bindings.items()
        }
        queue = queue_name(self.transport.service, self.consumer.settings)
        _log.info(
            "worker_started", queue=queue, types=sorted(self.consumer.handlers.handlers)
        )
        self.beat()
        try:
            self.transport.consume(
                queue, bindings, self.on_message, should_stop=self.should_stop
            )
        finally:
            _refresh_connections()
            _log.info("worker_stopped", queue=queue)

    def should_stop(self) -> bool:
        """What the transport asks at least once a second: beat, prune when
        due, and say whether to stop."""
        self.beat()
        now = time.monotonic()
        if now >= self._next_prune and not self.stopping:
            self._next_prune = now + _PRUNE_EVERY
            self._guarded(self.consumer.prune_inbox, "inbox_prune_failed")
        return self.stopping

    def on_message(self, delivery: Delivery) -> None:
        """Handle one delivery; ack it, or give it back to be delivered again.
        Never raises: one bad message must not stop the worker."""
        _refresh_connections()
        try:
            outcome = None
            if delivery.redelivered:
                outcome = self.consumer.count_redelivery(delivery.body)
            if outcome is None:
                outcome = self.consumer.receive(delivery.body, wait=self._wait)
                if outcome is not None and delivery.redelivered:
                    self.consumer.forget_deliveries(delivery.body)
        except Exception as exc:  # the database is away: try the message later
            _log.error(
                "event_not_recorded", error=_truncate(f"{type(exc).__name__}: {exc}")
            )
            _refresh_connections()
            self._wait(handler_backoff(1, self.consumer.settings))
            delivery.requeue()
            return
        if outcome is None:
            delivery.requeue()
        else:
            delivery.ack()
        self.beat()

    def beat(self) -> None:
        """Touch the health file (at most once a second)."""
        if self.health_file is None:
            return
        now = time.monotonic()
        if now - self._last_beat < _HEARTBEAT_EVERY:
            return
        self._last_beat = now
        self._guarded(self.health_file.touch, "health_file_failed")

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` in steps that keep the heartbeat; ``False`` when
        the worker is asked to stop meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, _STOP_POLL))
            self.beat()
        return False

    @staticmethod
    def _guarded(action: Callable[[], object], failure: str) -> None:
        try:
            action()
        except Exception as exc:
            _log.warning(failure, error=_truncate(f"{type(exc).__name__}: {exc}"))
