from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import mixins, viewsets

from orders.models import Order
from orders.serializers import OrderSerializer


class OrderViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Order],
):
    """Orders of catalog products: list, create, read."""

    serializer_class = OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        return Order.objects.prefetch_related("items")
