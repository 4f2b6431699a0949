from __future__ import annotations

from rest_framework import serializers

from catalog.models import Product


class ProductSerializer(serializers.ModelSerializer[Product]):
    class Meta:
        model = Product
        fields = ["id", "sku", "name", "price", "stock"]


class ReservationSerializer(serializers.Serializer[dict[str, int]]):
    """Units of a product to take out of stock for an order."""

    quantity = serializers.IntegerField(min_value=1, max_value=1000)
