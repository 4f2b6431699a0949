"""The saga's events on orders' side.

Placing an order publishes ``orders.order.placed.v1`` in the transaction that
saves it (:func:`order_placed`). The catalog answers with
``catalog.stock.reserved.v1`` or ``catalog.stock.rejected.v1``; orders' events
worker (``manage.py microkit_consume``) runs :class:`StockReserved` or
:class:`StockRejected`, which move the order from ``pending`` to ``confirmed``
or ``rejected``. An order already decided is left as it is, so an answer
handled twice, or late, changes nothing.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from django_microkit.events.envelope import Event
from django_microkit.events.handlers import EventHandler
from django_microkit.events.publish import publish
from django_microkit.serializers import Serializer
from orders.models import Order

#: The event orders publishes.
ORDER_PLACED = "orders.order.placed.v1"

#: The largest id of an order or a product: both services' ids are 64-bit.
MAX_ID = 2**63 - 1


def order_key(order: Order) -> str:
    """The ordering key of the order's events: every event of one order, on
    either side, is delivered in the order it was published."""
    return f"order-{order.pk}"


def order_placed(order: Order) -> None:
    """Publish ``orders.order.placed.v1`` for ``order``, in the caller's
    transaction (it is sent once that commits, never if it rolls back)."""
    publish(
        ORDER_PLACED,
        {
            "order_id": order.pk,
            "items": [
                {"product_id": item.product_id, "quantity": item.quantity}
                for item in order.items.all()
            ],
        },
        key=order_key(order),
    )


class _Item(Serializer):
    product_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    quantity = serializers.IntegerField(min_value=1)


class RejectionReasonSerializer(Serializer):
    """Why the catalog could not reserve one product of an order."""

    product_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    code = serializers.CharField(max_length=64)
    detail = serializers.CharField(max_length=500)
    available = serializers.IntegerField(min_value=0, required=False)


class StockReservedSerializer(Serializer):
    """The data of ``catalog.stock.reserved.v1``."""

    order_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    items = _Item(many=True)


class StockRejectedSerializer(Serializer):
    """The data of ``catalog.stock.rejected.v1``: why each refused item was."""

    order_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    reasons = serializers.ListField(
        child=RejectionReasonSerializer(), allow_empty=False, max_length=100
    )


class StockReserved(EventHandler):
    """The catalog reserved every item: the order is confirmed."""

    serializer_class = StockReservedSerializer

    def handle(self, event: Event, data: dict[str, Any]) -> None:
        Order.objects.filter(pk=data["order_id"], status=Order.Status.PENDING).update(
            status=Order.Status.CONFIRMED
        )


class StockRejected(EventHandler):
    """The catalog reserved nothing: the order is rejected, with its reasons."""

    serializer_class = StockRejectedSerializer

    def handle(self, event: Event, data: dict[str, Any]) -> None:
        Order.objects.filter(pk=data["order_id"], status=Order.Status.PENDING).update(
            status=Order.Status.REJECTED,
            rejection_reasons=[dict(reason) for reason in data["reasons"]],
        )
