from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import mixins, viewsets

from django_microkit import IdempotentMixin
from orders.models import Order
from orders.serializers import OrderSerializer


class OrderViewSet(
    IdempotentMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Order],
):
    """Orders of catalog products: list, create, read.

    Creating an order is idempotent: a ``POST`` retried with the same
    ``Idempotency-Key`` places one order and gets the first response again.
    """

    serializer_class = OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        return Order.objects.prefetch_related("items")
