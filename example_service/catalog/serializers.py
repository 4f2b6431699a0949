from __future__ import annotations

from rest_framework import serializers

from catalog.models import Product


class ProductSerializer(serializers.ModelSerializer[Product]):
    class Meta:
        model = Product
        fields = ["id", "sku", "name", "price", "stock"]
