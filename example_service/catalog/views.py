from __future__ import annotations

from rest_framework import viewsets

from catalog.models import Product
from catalog.serializers import ProductSerializer


class ProductViewSet(viewsets.ModelViewSet[Product]):
    """Products of the catalog: list, create, read, update, delete."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
