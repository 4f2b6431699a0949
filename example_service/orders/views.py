from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from django_microkit import IdempotentMixin
from django_microkit.openapi import problem_response
from django_microkit.pagination import CursorPagination
from orders.models import Order
from orders.serializers import OrderSerializer


@extend_schema_view(
    create=extend_schema(
        parameters=[
            OpenApiParameter(
                "Location",
                str,
                OpenApiParameter.HEADER,
                description="The order's URL (`/api/orders/{id}/`).",
                response=[202],
            )
        ],
        responses={
            202: OpenApiResponse(
                OrderSerializer,
                description="The order is saved `pending`; `Location` is where "
                "to read it until the catalog confirms or rejects it.",
            ),
            409: problem_response(
                "The catalog has no such product (`unknown_product`).",
                code="unknown_product",
                validation=True,
            ),
            503: problem_response(
                "The catalog is unavailable (`catalog_unavailable`): retry "
                "after `Retry-After` seconds.",
                code="catalog_unavailable",
            ),
        },
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

    ``POST`` answers ``202 Accepted``: the order is saved ``pending`` and the
    catalog reserves its stock when the ``orders.order.placed.v1`` event
    reaches it; ``GET`` on the ``Location`` then shows it ``confirmed``, or
    ``rejected`` with the catalog's reason for each item it refused.

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

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = serializer.save()
        location = reverse("order-detail", kwargs={"pk": order.pk})
        return Response(
            serializer.data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": location},
        )
