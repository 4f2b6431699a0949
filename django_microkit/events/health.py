"""Readiness checks of events, registered with django_microkit.health: a
service lists them in ``MICROKIT["HEALTH"]["READINESS_CHECKS"]``.

- ``events:broker``: the broker answers (a new connection, within
  ``PUBLISH_TIMEOUT``).
- ``events:outbox``: the age of the oldest unsent event warns past
  ``LAG_WARN`` seconds and fails past ``LAG_FAIL``: the relay is down, or the
  broker has been unreachable for that long.
"""

from __future__ import annotations

from health_check.exceptions import ServiceUnavailable, ServiceWarning

from django.utils import timezone

from django_microkit.conf import microkit_settings
from django_microkit.events.models import OutboxEvent
from django_microkit.events.transport import TransportError, get_transport
from django_microkit.health import register_check

__all__ = ["BROKER_CHECK", "OUTBOX_CHECK", "check_broker", "check_outbox", "outbox_lag"]

#: The names a service lists in ``READINESS_CHECKS``.
BROKER_CHECK = "events:broker"
OUTBOX_CHECK = "events:outbox"


def outbox_lag() -> float:
    """Seconds since the oldest unsent event was written (0 when none is)."""
    oldest = (
        OutboxEvent.objects.filter(sent_at__isnull=True)
        .order_by("id")
        .values_list("created_at", flat=True)
        .first()
    )
    if oldest is None:
        return 0.0
    return max((timezone.now() - oldest).total_seconds(), 0.0)


@register_check(BROKER_CHECK, probes=(), component_type="component")
def check_broker() -> None:
    """Raise ``ServiceUnavailable`` unless the events broker answers."""
    try:
        get_transport().check()
    except TransportError as error:
        raise ServiceUnavailable(str(error)) from None


@register_check(OUTBOX_CHECK, probes=(), component_type="datastore")
def check_outbox() -> None:
    """Warn, or fail, when the oldest unsent event is older than
    ``LAG_WARN``, or ``LAG_FAIL``, seconds."""
    settings = microkit_settings.EVENTS
    lag = outbox_lag()
    if lag >= float(settings["LAG_FAIL"]):
        raise ServiceUnavailable(f"The oldest unsent event is {lag:.0f} s old.")
    if lag >= float(settings["LAG_WARN"]):
        raise ServiceWarning(f"The oldest unsent event is {lag:.0f} s old.")
