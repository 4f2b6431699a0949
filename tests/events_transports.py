"""Transports of the events tests, named by dotted path in TRANSPORT_CLASS:
kombu's, with a fault the test asks for."""

from __future__ import annotations

import os
import signal
from typing import ClassVar

from django_microkit.events.kombu import KombuTransport
from django_microkit.events.transport import OutgoingEvent, TransportError


class FlakyTransport(KombuTransport):
    """Refuses the event types in ``refused`` (as a broker that did not
    confirm them) and records what it published."""

    refused: ClassVar[set[str]] = set()
    published: ClassVar[list[OutgoingEvent]] = []

    def publish(self, event: OutgoingEvent) -> None:
        if event.type in self.refused:
            raise TransportError(f"{event.type} was not confirmed")
        super().publish(event)
        self.published.append(event)


class KillAfterConfirm(KombuTransport):
    """Dies (SIGKILL) once the broker confirmed the first event: between the
    confirmation and the commit that marks the row sent."""

    def publish(self, event: OutgoingEvent) -> None:
        super().publish(event)
        os.kill(os.getpid(), signal.SIGKILL)
