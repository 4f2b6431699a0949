from __future__ import annotations

from typing import Any

from rest_framework import serializers

from catalog.models import Product
from django_microkit.errors import Problem
from django_microkit.serializers import ModelSerializer, Serializer


class _ProductFields(ModelSerializer[Product]):
    """What both versions share: a product that is valid but for a SKU another
    product has is a 409 conflict with the catalog's current state, not a
    malformed request. With other errors too it is a 400 listing them all."""

    class Meta:
        model = Product
        fields: list[str] = []

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if exc.get_codes() != {"sku": ["unique"]}:
                raise
            raise Problem(
                409,
                "sku_taken",
                detail="Another product has this SKU.",
                errors=[
                    {
                        "code": "unique",
                        "detail": "Another product has this SKU.",
                        "pointer": "/sku",
                    }
                ],
            ) from exc


class ProductSerializer(_ProductFields):
    """A product as API version 2 (current) shows it."""

    class Meta(_ProductFields.Meta):
        fields = ["id", "sku", "name", "price", "stock"]


class ProductV1Serializer(_ProductFields):
    """A product as API version 1 showed it: the price as a JSON number rather
    than a decimal string, and no stock."""

    price = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, coerce_to_string=False
    )

    class Meta(_ProductFields.Meta):
        fields = ["id", "sku", "name", "price"]


class ReservationSerializer(Serializer):
    """Units of a product to take out of stock for an order."""

    quantity = serializers.IntegerField(min_value=1, max_value=1000)
