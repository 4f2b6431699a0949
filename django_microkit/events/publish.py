"""``publish()``: an event written in the caller's transaction (the outbox),
sent once that transaction commits.

.. code-block:: python

    with transaction.atomic():
        order = Order.objects.create(...)
        publish("orders.order.placed.v1", {"id": order.pk}, key=str(order.pk))

The function is imported from this module (``from
django_microkit.events.publish import publish``), not re-exported by the
package: there the module's name would hide it. A rolled-back transaction
publishes nothing. After the commit the event is sent
at once (``SEND_ON_COMMIT``) through the relay's code, so the order of a key
holds; if that fails, or the process dies first, the relay sends it later.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import router, transaction
from django.utils import timezone

from django_microkit.conf import microkit_settings
from django_microkit.events.envelope import encode_event, new_event
from django_microkit.events.models import OutboxEvent
from django_microkit.service_auth.keys import get_config
from django_microkit.tracing import producer_span

__all__ = ["publish"]

logger = logging.getLogger("django_microkit.events")


def publish(
    event_type: str, data: Any, *, key: str, using: str | None = None
) -> OutboxEvent:
    """Write the event ``event_type`` with ``data`` (JSON) to the outbox, in the
    current transaction of the database ``using``, signed with this service's
    key; ``key`` orders it among the events of the same key (the CloudEvents
    ``subject``, e.g. the order's id).

    Raises ``ValueError`` for a malformed type or key or data that is not
    JSON, and ``ImproperlyConfigured`` without ``SERVICE_NAME`` or a signing
    key: the caller's transaction sees the error, nothing is written.
    """
    service = microkit_settings.SERVICE_NAME
    if not service:
        raise ImproperlyConfigured(
            "Publishing events needs MICROKIT['SERVICE_NAME'] (the events' source)."
        )
    signing_key = get_config().signing_key
    if signing_key is None:
        raise ImproperlyConfigured(
            "Publishing events needs a signing key in "
            "MICROKIT['SERVICE_AUTH']['SIGNING_KEYS']: consumers verify every event."
        )
    attributes = {
        "messaging.operation.type": "create",
        "messaging.destination.name": event_type,
        "cloudevents.event_subject": key,
    }
    with producer_span(f"{event_type} create", attributes=attributes):
        event = new_event(service, event_type, data, key)
    body = encode_event(event, signing_key)
    max_size = int(microkit_settings.EVENTS["MAX_EVENT_SIZE"])
    if len(body.encode()) > max_size:
        raise ValueError(
            f"The event is over MICROKIT['EVENTS']['MAX_EVENT_SIZE'] ({max_size} "
            "bytes): consumers would refuse it."
        )
    using = using or router.db_for_write(OutboxEvent)
    row: OutboxEvent = OutboxEvent.objects.using(using).create(
        event_id=event.id,
        type=event.type,
        key=event.subject,
        body=body,
        created_at=timezone.now(),
    )
    if microkit_settings.EVENTS["SEND_ON_COMMIT"]:
        transaction.on_commit(lambda: _send_now(row.id, using), using=using)
    return row


def _send_now(id: int, using: str) -> None:
    """Send the row ``id`` just committed; a failure is logged, the relay sends
    the row later."""
    from django_microkit.events.relay import Relay

    try:
        Relay(using=using).send_events([id])
    except Exception:
        logger.warning(
            "Sending an event after commit failed; the relay will send it.",
            exc_info=True,
        )
