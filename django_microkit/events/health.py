"""Readiness checks of events, for ``MICROKIT["HEALTH"]["READINESS_CHECKS"]``:

- ``"django_microkit.events.health.broker"`` (reported as ``events:broker``):
  the broker answers a new connection within ``PUBLISH_TIMEOUT``.
- ``"django_microkit.events.health.outbox"`` (``events:outbox``): the age of
  the oldest unsent event warns past ``LAG_WARN`` seconds and fails past
  ``LAG_FAIL``: the relay is down, or the broker has been unreachable that long.
"""

from __future__ import annotations

from django.utils import timezone
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from django_microkit.conf import microkit_settings
from django_microkit.events.models import OutboxEvent
from django_microkit.events.transport import TransportError, get_transport
from django_microkit.metrics.families import OUTBOX_LAG

__all__ = ["Events", "broker", "outbox", "outbox_lag"]


def outbox_lag() -> float:
    """Seconds since the oldest unsent event was written (0 when none is)."""
    oldest = (
        OutboxEvent.objects.filter(sent_at__isnull=True)
        .order_by("id")
        .values_list("created_at", flat=True)
        .first()
    )
    lag = 0.0
    if oldest is not None:
        lag = max(float((timezone.now() - oldest).total_seconds()), 0.0)
    OUTBOX_LAG.set(lag)
    return lag


class Events:
    """A readiness check of events: ``alias`` ``"broker"`` or ``"outbox"``
    (the probe names it ``events:<alias>``)."""

    ALIASES = ("broker", "outbox")

    def __init__(self, alias: str) -> None:
        if alias not in self.ALIASES:
            raise ValueError(f"alias is one of {self.ALIASES}, not {alias!r}")
        self.alias = alias

    def run(self) -> None:
        """Raise ``ServiceUnavailable`` (or ``ServiceWarning``) when not ready."""
        if self.alias == "broker":
            try:
                get_transport().check()
            except TransportError as error:
                raise ServiceUnavailable(str(error)) from None
            return
        settings = microkit_settings.EVENTS
        lag = outbox_lag()
        if lag >= float(settings["LAG_FAIL"]):
            raise ServiceUnavailable(f"The oldest unsent event is {lag:.0f} s old.")
        if lag >= float(settings["LAG_WARN"]):
            raise ServiceWarning(f"The oldest unsent event is {lag:.0f} s old.")


#: The checks a service lists by dotted path.
broker = Events("broker")
outbox = Events("outbox")
