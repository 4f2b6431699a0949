"""How events reach the broker and come back: the :class:`Transport` the relay
publishes through and the worker consumes from.

The topology is the same on every broker: each producing service publishes to
a topic exchange of its own (``EXCHANGE_PREFIX`` + its name) with the event's
type as routing key; each consuming service has one durable queue (``QUEUE``)
bound to the producers' exchanges for the types it handles.

:class:`KombuTransport` is the default and kombu does the talking. A service
may swap it by dotted path (``MICROKIT["EVENTS"]["TRANSPORT_CLASS"]``);
``django_microkit.testing`` has one that delivers in memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from django.utils.module_loading import import_string

from django_microkit.conf import EventsSettings, derived, microkit_settings

__all__ = [
    "Delivery",
    "OutgoingEvent",
    "Transport",
    "TransportError",
    "exchange_name",
    "get_transport",
    "queue_name",
]


class TransportError(Exception):
    """The broker could not be reached, or did not confirm a message. Says what
    failed in words safe to log (never the broker URL's password)."""


@dataclass(frozen=True)
class OutgoingEvent:
    """An event to publish: its signed body and where it goes."""

    event_id: str
    type: str
    key: str
    body: str


class Delivery(ABC):
    """One message taken from the queue, not yet settled."""

    #: The message body as received.
    body: bytes
    #: The broker delivered it before, to this or another worker.
    redelivered: bool

    @abstractmethod
    def ack(self) -> None:
        """Settle the message: the broker forgets it."""

    @abstractmethod
    def requeue(self) -> None:
        """Give the message back to the broker, to be delivered again."""


def exchange_name(producer: str, settings: EventsSettings | None = None) -> str:
    """The topic exchange the service ``producer`` publishes to."""
    settings = settings or microkit_settings.EVENTS
    return f"{settings['EXCHANGE_PREFIX']}{producer}"


def queue_name(service: str, settings: EventsSettings | None = None) -> str:
    """The durable queue the service ``service`` consumes from."""
    settings = settings or microkit_settings.EVENTS
    return settings["QUEUE"] or f"{service}.events"


class Transport(ABC):
    """The broker as the relay and the worker see it.

    One instance per process (:func:`get_transport`); it keeps its connection
    and reconnects as needed. Every call is bounded in time.
    """

    def __init__(self, service: str, settings: EventsSettings) -> None:
        self.service = service
        self.settings = settings

    @abstractmethod
    def publish(self, event: OutgoingEvent) -> None:
        """Send ``event`` to this service's exchange and return once the broker
        confirmed it; raise :class:`TransportError` otherwise (the event may
        or may not have reached the broker: it is sent again later)."""

    @abstractmethod
    def consume(
        self,
        queue: str,
        bindings: Mapping[str, Sequence[str]],
        on_message: Callable[[Delivery], None],
        *,
        should_stop: Callable[[], bool],
    ) -> None:
        """Declare ``queue`` (durable) bound to each producer's exchange for the
        types given (``{"orders": ["orders.order.placed.v1"]}``), then pass each
        message to ``on_message`` until ``should_stop()`` is true (asked at least
        once a second). Reconnects after a lost connection."""

    @abstractmethod
    def check(self) -> None:
        """Raise :class:`TransportError` unless the broker answers now."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection (it is opened again when needed)."""


@derived(fork_safe=True)
def get_transport() -> Transport:
    """This process's transport, of ``TRANSPORT_CLASS``."""
    settings = microkit_settings.EVENTS
    cls: type[Transport] = import_string(settings["TRANSPORT_CLASS"])
    return cls(microkit_settings.SERVICE_NAME, settings)
