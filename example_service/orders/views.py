from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets

from django_microkit import IdempotentMixin
from django_microkit.openapi import problem_response
from django_microkit.pagination import CursorPagination
from orders.models import Order
from orders.serializers import OrderSerializer


@extend_schema_view(
    create=extend_schema(
        responses={
            201: OrderSerializer,
            409: problem_response(
                "The catalog has no such product (`unknown_product`) or not "
                "enough of it (`insufficient_stock`).",
                validation=True,
            ),
            503: problem_response(
                "The catalog is unavailable (`catalog_unavailable`): retry "
                "after `Retry-After` seconds.",
                code="catalog_unavailable",
            ),
        }
    )
)
class OrderViewSet(
    IdempotentMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Order],
):
    """Orders of catalog products: list, create, read.

    The list grows without bound, so it is paged by cursor, newest first
    (``Order.Meta.ordering``): no ``COUNT(*)``, and orders placed while a client
    pages never shift a page.

    Creating an order is idempotent: a ``POST`` retried with the same
    ``Idempotency-Key`` places one order and gets the first response again.
    """

    serializer_class = OrderSerializer
    pagination_class = CursorPagination

    def get_queryset(self) -> QuerySet[Order]:
        queryset: QuerySet[Order] = Order.objects.prefetch_related("items")
        return queryset
