from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import serializers

from django_microkit.errors import Problem
from orders import catalog
from orders.models import Order, OrderItem


class OrderItemSerializer(serializers.ModelSerializer[OrderItem]):
    product_id = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=1000)

    class Meta:
        model = OrderItem
        fields = ["product_id", "quantity", "unit_price"]
        read_only_fields = ["unit_price"]


class OrderSerializer(serializers.ModelSerializer[Order]):
    items = OrderItemSerializer(many=True)
    total = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)

    class Meta:
        model = Order
        fields = ["id", "status", "items", "total", "created_at"]
        read_only_fields = ["id", "status", "total", "created_at"]

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not items:
            raise serializers.ValidationError("An order needs at least one item.")
        errors: list[dict[str, Any]] = []
        for item in items:
            try:
                product = catalog.get_product(item["product_id"])
            except catalog.ProductNotFound:
                errors.append({"product_id": ["No product with this id."]})
                continue
            except catalog.CatalogUnavailable as exc:
                raise Problem(
                    503,
                    "catalog_unavailable",
                    detail="The catalog service is unavailable; try again later.",
                    headers={"Retry-After": "5"},
                ) from exc
            item["unit_price"] = product["price"]
            errors.append({})
        if any(errors):
            raise serializers.ValidationError(errors)
        return items

    def create(self, validated_data: dict[str, Any]) -> Order:
        items = validated_data.pop("items")
        with transaction.atomic():
            order = Order.objects.create(**validated_data)
            OrderItem.objects.bulk_create(
                OrderItem(order=order, **item) for item in items
            )
        return order
