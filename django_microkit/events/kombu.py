"""The default :class:`~django_microkit.events.transport.Transport`: kombu talks
to the broker.

``BROKER_URL`` names it (``amqp://user:password@host:5672/vhost`` for RabbitMQ;
any kombu URL). Left empty, events go through kombu's filesystem transport in
``FILESYSTEM_FOLDER``: no server to run, shared by the processes of one machine
(its control folder holds each topic exchange's bindings), for development and
tests only.

On AMQP every publish waits for the broker's confirmation (RabbitMQ publisher
confirms) and is ``mandatory``: an event no queue is bound for comes back, is
logged as ``event_unroutable`` and counts as sent (nobody asked for it, and it
must not hold back the events after it).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue, binding
from kombu.messaging import Consumer, Producer
from kombu.transport import filesystem, virtual
from kombu.utils.json import dumps

from django_microkit.conf import EventsSettings
from django_microkit.events.transport import (
    Delivery,
    OutgoingEvent,
    Transport,
    TransportError,
    exchange_name,
    sleep_unless_stopped,
)

__all__ = ["CONTENT_TYPE", "KombuTransport", "filesystem_folder"]

#: The content type of an event message (CloudEvents structured mode, RFC-less
#: but registered with IANA).
CONTENT_TYPE = "application/cloudevents+json"

logger = logging.getLogger("django_microkit.events")

# How long the filesystem transport sleeps between looks at its folder.
_POLLING_INTERVAL = 0.1
# Seconds between reconnection attempts of a worker, doubling up to the last.
_RECONNECT_BACKOFF = (0.5, 30.0)
# drain_events() returns at least this often, so should_stop() is asked.
_DRAIN_TIMEOUT = 1.0


def filesystem_folder(settings: EventsSettings) -> Path:
    """The folder of the filesystem transport (``FILESYSTEM_FOLDER``, or
    ``django-microkit-events`` in the system's temporary directory)."""
    folder = settings["FILESYSTEM_FOLDER"]
    return Path(folder or Path(tempfile.gettempdir()) / "django-microkit-events")


class _OrderedChannel(filesystem.Channel):
    """kombu's filesystem channel, naming message files so that they sort in
    the order they were written (kombu's own names sort by millisecond, then
    randomly): the events of one key stay in order."""

    _lock = threading.Lock()
    _last = 0

    # kombu's two base classes name the message differently: either fits.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        with self._lock:
            stamp = max(time.time_ns(), _OrderedChannel._last + 1)
            _OrderedChannel._last = stamp
        name = f"{stamp:020d}_{uuid.uuid4().hex}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        # Written aside, then renamed: a reader never sees half a message.
        with open(partial, "wb") as file:
            file.write(dumps(payload).encode())
        os.replace(partial, path)

    def _restore(self, message: Any) -> None:
        # kombu marks a requeued message redelivered outside its delivery_info,
        # where AMQP (and Delivery.redelivered) has it.
        message.delivery_info["redelivered"] = True
        super()._restore(message)  # type: ignore[no-untyped-call]


class _OrderedFilesystemTransport(filesystem.Transport):
    Channel = _OrderedChannel
    # kombu keeps one state (exchanges, bindings) per process, so a binding
    # made in one folder would be taken as made in every other: one per folder.
    _states: dict[str, Any] = {}
    _states_lock = threading.Lock()

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)  # type: ignore[no-untyped-call]
        folder = str(client.transport_options["control_folder"])
        with self._states_lock:
            self.state = self._states.setdefault(folder, virtual.BrokerState())


class _KombuDelivery(Delivery):
    def __init__(self, message: Any) -> None:
        self._message = message
        body = message.body
        self.body = body if isinstance(body, bytes) else str(body).encode()
        self.redelivered = bool(message.delivery_info.get("redelivered", False))

    def ack(self) -> None:
        self._message.ack()

    def requeue(self) -> None:
        self._message.requeue()


class KombuTransport(Transport):
    """Events through kombu: RabbitMQ in production, the filesystem in
    development.

    One publishing connection per process, opened when first needed, shared by
    its threads (under a lock) and dropped after an error; the worker's
    :meth:`consume` has a connection of its own. Subclass it to change the
    connection (:meth:`connection`) or the message (:meth:`message_options`).
    """

    def __init__(self, service: str, settings: EventsSettings) -> None:
        super().__init__(service, settings)
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._returned: set[str] = set()

    # --- connections -------------------------------------------------------

    @property
    def timeout(self) -> float:
        return float(self.settings["PUBLISH_TIMEOUT"])

    def connection(self) -> Connection:
        """A new, unopened kombu connection to the broker."""
        url = self.settings["BROKER_URL"]
        if url:
            return Connection(
                url,
                connect_timeout=self.timeout,
                heartbeat=0,
                transport_options={"confirm_publish": True},
            )
        folder = filesystem_folder(self.settings)
        queues, control = folder / "queues", folder / "control"
        for path in (queues, control):
            path.mkdir(parents=True, exist_ok=True)
        return Connection(
            "filesystem://",
            transport=_OrderedFilesystemTransport,
            transport_options={
                "data_folder_in": str(queues),
                "data_folder_out": str(queues),
                "control_folder": str(control),
                "polling_interval": _POLLING_INTERVAL,
            },
        )

    def _open(self) -> Connection:
        connection = self.connection()
        try:
            connection.ensure_connection(max_retries=0)
        except BaseException:
            connection.release()
            raise
        return connection

    def message_options(self, event: OutgoingEvent) -> dict[str, Any]:
        """The properties of ``event``'s message (``Producer.publish`` options)."""
        return {
            "content_type": CONTENT_TYPE,
            "content_encoding": "utf-8",
            "delivery_mode": 2,
            "message_id": event.event_id,
            "type": event.type,
            "mandatory": True,
        }

    # --- Transport ---------------------------------------------------------

    def publish(self, event: OutgoingEvent) -> None:
        with self._lock:
            try:
                producer = self._producer or self._new_producer()
                self._returned.discard(event.event_id)
                producer.publish(
                    event.body,
                    routing_key=event.type,
                    timeout=self.timeout,
                    confirm_timeout=self.timeout,
                    **self.message_options(event),
                )
            except Exception as error:
                self._discard()
                raise TransportError(
                    f"Publishing {event.type} {event.event_id} failed: "
                    f"{_describe(error)}"
                ) from error
            if event.event_id in self._returned:
                self._returned.discard(event.event_id)
                logger.warning(
                    "event_unroutable: no queue is bound for %s from %s; "
                    "the event %s is dropped by the broker.",
                    event.type,
                    self.service,
                    event.event_id,
                )

    def _new_producer(self) -> Producer:
        connection = self._open()
        self._connection = connection
        channel = connection.channel()
        events = getattr(channel, "events", None)
        if events is not None:  # py-amqp: where basic.return arrives
            events["basic_return"].add(self._on_return)
        exchange = Exchange(
            exchange_name(self.service, self.settings), "topic", durable=True
        )
        self._producer = Producer(channel, exchange=exchange)
        return self._producer

    def _on_return(
        self, error: Exception, exchange: str, routing_key: str, message: Any
    ) -> None:
        message_id = message.properties.get("message_id")
        if isinstance(message_id, str):
            self._returned.add(message_id)

    def _discard(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # pragma: no cover - closing a broken socket
                logger.debug("Closing a broken connection failed.", exc_info=True)

    def consume(
        self,
        queue: str,
        bindings: Mapping[str, Sequence[str]],
        on_message: Callable[[Delivery], None],
        *,
        should_stop: Callable[[], bool],
    ) -> None:
        backoff = _RECONNECT_BACKOFF[0]
        while not should_stop():
            try:
                connection = self._open()
            except Exception as error:
                logger.warning(
                    "The events broker is unreachable (%s); retrying in %.1f s.",
                    _describe(error),
                    backoff,
                )
                sleep_unless_stopped(backoff, should_stop)
                backoff = min(backoff * 2, _RECONNECT_BACKOFF[1])
                continue
            try:
                backoff = _RECONNECT_BACKOFF[0]
                self._consume_on(connection, queue, bindings, on_message, should_stop)
            except (
                *connection.connection_errors,
                *connection.channel_errors,
                OSError,
            ) as error:
                logger.warning(
                    "The events broker connection was lost (%s); reconnecting.",
                    _describe(error),
                )
                sleep_unless_stopped(backoff, should_stop)
            finally:
                try:
                    connection.release()
                except Exception:  # pragma: no cover - closing a broken socket
                    logger.debug("Closing a broken connection failed.", exc_info=True)

    def _consume_on(
        self,
        connection: Connection,
        queue: str,
        bindings: Mapping[str, Sequence[str]],
        on_message: Callable[[Delivery], None],
        should_stop: Callable[[], bool],
    ) -> None:
        channel = connection.channel()
        declared = Queue(
            queue,
            bindings=[
                binding(
                    Exchange(
                        exchange_name(producer, self.settings), "topic", durable=True
                    ),
                    routing_key=event_type,
                )
                for producer, types in bindings.items()
                for event_type in types
            ],
            durable=True,
            channel=channel,
        )
        declared.declare()
        consumer = Consumer(
            channel,
            [declared],
            on_message=lambda message: on_message(_KombuDelivery(message)),
            prefetch_count=int(self.settings["PREFETCH"]),
        )
        with consumer:
            while not should_stop():
                try:
                    connection.drain_events(timeout=_DRAIN_TIMEOUT)
                except TimeoutError:
                    continue

    def check(self) -> None:
        try:
            connection = self._open()
        except Exception as error:
            raise TransportError(
                f"The events broker is unreachable: {_describe(error)}"
            ) from error
        connection.release()

    def close(self) -> None:
        with self._lock:
            self._discard()


def _describe(error: BaseException) -> str:
    """An error in words safe to log: kombu's messages name hosts, never the
    password of the URL."""
    text = str(error) or "no detail"
    return f"{type(error).__name__}: {text}"[:300]
