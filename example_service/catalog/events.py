"""What catalog does with orders' events: reserve the stock of a placed order.

``orders.order.placed.v1`` arrives through the events worker
(``manage.py microkit_consume``), which runs :class:`OrderPlaced` in one
database transaction with the inbox row that makes a redelivery a no-op. In
that transaction the handler reserves every item of the order or none, and
publishes the outcome to orders through the outbox: ``catalog.stock.reserved.v1``,
or ``catalog.stock.rejected.v1`` with the reason for each item it could not
reserve. The outcome is sent only if the reservation commits.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rest_framework import serializers

from catalog.models import Product, Reservation
from django_microkit.events.envelope import Event
from django_microkit.events.handlers import EventHandler
from django_microkit.events.publish import publish
from django_microkit.serializers import Serializer

#: The events catalog publishes.
STOCK_RESERVED = "catalog.stock.reserved.v1"
STOCK_REJECTED = "catalog.stock.rejected.v1"


class _OrderItem(Serializer):
    product_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    quantity = serializers.IntegerField(min_value=1, max_value=1000)


class OrderPlacedSerializer(Serializer):
    """The data of ``orders.order.placed.v1``: the order's id and its items."""

    order_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    items = serializers.ListField(child=_OrderItem(), allow_empty=False, max_length=100)


class OrderPlaced(EventHandler):
    """Reserve the stock of every item of a placed order, or of none.

    The products are locked (``SELECT … FOR UPDATE``, in id order so that two
    workers never deadlock) before their stock is read, so concurrent orders
    for one product queue on its row and never oversell it.
    """

    serializer_class = OrderPlacedSerializer

    def handle(self, event: Event, data: dict[str, Any]) -> None:
        order_id: int = data["order_id"]
        wanted: Counter[int] = Counter()
        for item in data["items"]:
            wanted[item["product_id"]] += item["quantity"]
        products = {
            product.pk: product
            for product in Product.objects.select_for_update()
            .filter(pk__in=wanted)
            .order_by("pk")
        }
        reasons = [
            reason
            for product_id, quantity in sorted(wanted.items())
            if (reason := _refusal(products.get(product_id), product_id, quantity))
        ]
        if reasons:
            publish(
                STOCK_REJECTED,
                {"order_id": order_id, "reasons": reasons},
                key=event.subject,
            )
            return
        for product_id, quantity in sorted(wanted.items()):
            product = products[product_id]
            product.stock -= quantity
            product.save(update_fields=["stock"])
        Reservation.objects.bulk_create(
            Reservation(order_id=order_id, product=products[product_id], quantity=qty)
            for product_id, qty in sorted(wanted.items())
        )
        publish(
            STOCK_RESERVED,
            {
                "order_id": order_id,
                "items": [
                    {"product_id": product_id, "quantity": quantity}
                    for product_id, quantity in sorted(wanted.items())
                ],
            },
            key=event.subject,
        )


def _refusal(
    product: Product | None, product_id: int, quantity: int
) -> dict[str, Any] | None:
    """Why ``quantity`` units of the product cannot be reserved, or ``None``."""
    if product is None:
        return {
            "product_id": product_id,
            "code": "unknown_product",
            "detail": "The catalog has no product with this id.",
        }
    if product.stock < quantity:
        return {
            "product_id": product_id,
            "code": "insufficient_stock",
            "detail": f"Not enough stock: only {product.stock} of {product.sku} left.",
            "available": product.stock,
        }
    return None
