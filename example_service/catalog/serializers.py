from __future__ import annotations

from rest_framework import serializers

from catalog.models import Product


class ProductSerializer(serializers.ModelSerializer[Product]):
    """A product as API version 2 (current) shows it."""

    class Meta:
        model = Product
        fields = ["id", "sku", "name", "price", "stock"]


class ProductV1Serializer(serializers.ModelSerializer[Product]):
    """A product as API version 1 showed it: the price as a JSON number rather
    than a decimal string, and no stock."""

    price = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, coerce_to_string=False
    )

    class Meta:
        model = Product
        fields = ["id", "sku", "name", "price"]


class ReservationSerializer(serializers.Serializer[dict[str, int]]):
    """Units of a product to take out of stock for an order."""

    quantity = serializers.IntegerField(min_value=1, max_value=1000)
