from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import serializers

from django_microkit.client import NotFoundError, ServiceUnavailableError
from django_microkit.errors import Problem
from django_microkit.serializers import ModelSerializer
from orders import catalog
from orders.events import RejectionReasonSerializer, order_placed
from orders.models import Order, OrderItem


def catalog_unavailable(exc: ServiceUnavailableError) -> Problem:
    """503 for any way the catalog can fail us: down, slow, 5xx, open circuit."""
    retry_after = max(1, round(exc.retry_after or 5))
    return Problem(
        503,
        "catalog_unavailable",
        detail="The catalog service is unavailable; try again later.",
        headers={"Retry-After": str(retry_after)},
    )


#: The largest product id: the catalog's ids are 64-bit.
MAX_PRODUCT_ID = 2**63 - 1


def unknown_products(indexes: list[int]) -> Problem:
    """409: the order names products the catalog does not have (any more)."""
    return Problem(
        409,
        "unknown_product",
        detail="The catalog has no product with this id.",
        errors=[
            {
                "code": "unknown_product",
                "detail": "No product with this id.",
                "pointer": f"/items/{index}/product_id",
            }
            for index in indexes
        ],
    )


class OrderItemSerializer(ModelSerializer[OrderItem]):
    product_id = serializers.IntegerField(min_value=1, max_value=MAX_PRODUCT_ID)
    quantity = serializers.IntegerField(min_value=1, max_value=1000)

    class Meta:
        model = OrderItem
        fields = ["product_id", "quantity", "unit_price"]
        read_only_fields = ["unit_price"]


class OrderSerializer(ModelSerializer[Order]):
    items = OrderItemSerializer(
        many=True,
        allow_empty=False,
        error_messages={"empty": "An order needs at least one item."},
    )
    total = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    #: Empty unless the order is rejected.
    rejection_reasons = RejectionReasonSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = ["id", "status", "rejection_reasons", "items", "total", "created_at"]
        read_only_fields = ["id", "status", "rejection_reasons", "total", "created_at"]

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # A product missing from the catalog is a conflict with its current
        # state (it may have been deleted since the client read it), not a
        # malformed order: 409.
        missing: list[int] = []
        for index, item in enumerate(items):
            try:
                product = catalog.get_product(item["product_id"])
            except NotFoundError:
                missing.append(index)
                continue
            except ServiceUnavailableError as exc:
                raise catalog_unavailable(exc) from exc
            item["unit_price"] = product["price"]
        if missing:
            raise unknown_products(missing)
        return items

    def create(self, validated_data: dict[str, Any]) -> Order:
        # The order is saved pending with its event in one transaction: the
        # catalog reserves the stock when the event reaches it, and says so.
        items = validated_data.pop("items")
        with transaction.atomic():
            order: Order = Order.objects.create(**validated_data)
            OrderItem.objects.bulk_create(
                OrderItem(order=order, **item) for item in items
            )
            order_placed(order)
        return order
