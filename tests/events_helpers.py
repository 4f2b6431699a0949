"""What the events tests share: settings of a service that publishes, and a
listener that takes messages off a queue through the transport's consume()."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from kombu.entity import Exchange, Queue, binding

from django_microkit.events.kombu import KombuTransport
from django_microkit.events.transport import Delivery, exchange_name
from tests.service_auth_keys import auth_settings


def events_settings(**events: Any) -> dict[str, Any]:
    """MICROKIT of the service "tests" (signing with tests-1, a peer of
    itself) with ``events`` as its EVENTS section."""
    return {**auth_settings(), "SERVICE_VERSION": "1.0.0", "EVENTS": events}


class Listener:
    """Consumes ``queue`` in a thread, acking and keeping every body."""

    def __init__(
        self,
        transport: KombuTransport,
        queue: str,
        bindings: Mapping[str, Sequence[str]],
    ) -> None:
        self.transport = transport
        self.queue = queue
        self.bindings = bindings
        self.bodies: list[bytes] = []
        self.redelivered: list[bool] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def declare(self) -> None:
        """Declare the queue and its bindings now, so publishing routes to it."""
        with self.transport.connection() as connection:
            channel = connection.channel()
            Queue(
                self.queue,
                bindings=[
                    binding(
                        Exchange(
                            exchange_name(producer, self.transport.settings),
                            "topic",
                            durable=True,
                        ),
                        routing_key=event_type,
                    )
                    for producer, types in self.bindings.items()
                    for event_type in types
                ],
                durable=True,
                channel=channel,
            ).declare()

    def _on_message(self, delivery: Delivery) -> None:
        self.bodies.append(delivery.body)
        self.redelivered.append(delivery.redelivered)
        delivery.ack()

    def _run(self) -> None:
        self.transport.consume(
            self.queue, self.bindings, self._on_message, should_stop=self._stop.is_set
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()

    def wait_for(self, count: int, timeout: float = 15) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.bodies)


@contextmanager
def listening(
    transport: KombuTransport, queue: str, bindings: Mapping[str, Sequence[str]]
) -> Iterator[Listener]:
    listener = Listener(transport, queue, bindings)
    listener.declare()
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()
