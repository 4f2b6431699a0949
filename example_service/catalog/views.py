from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.authentication import BasicAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import (
    SAFE_METHODS,
    AllowAny,
    IsAdminUser,
)
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import Product
from catalog.serializers import (
    ProductSerializer,
    ProductV1Serializer,
    ReservationSerializer,
)
from django_microkit import HasServiceScope, ServiceTokenAuthentication
from django_microkit.errors import Problem
from django_microkit.openapi import problem_response
from django_microkit.versioning import VersionedSerializerMixin

#: Writing to the catalog (creating, changing, deleting, reserving products)
#: takes a service token of orders with the catalog:write scope (catalog knows
#: no other service), or a staff user. Orders itself only reads: the stock of
#: an order is reserved when its event reaches catalog (catalog.events).
CanWriteCatalog = HasServiceScope("catalog:write") | IsAdminUser


_SKU_TAKEN = problem_response(
    "Another product has this SKU.", code="sku_taken", validation=True
)


@extend_schema_view(
    create=extend_schema(responses={201: ProductSerializer, 409: _SKU_TAKEN}),
    update=extend_schema(responses={200: ProductSerializer, 409: _SKU_TAKEN}),
    partial_update=extend_schema(responses={200: ProductSerializer, 409: _SKU_TAKEN}),
)
class ProductViewSet(VersionedSerializerMixin, viewsets.ModelViewSet[Product]):
    """Products of the catalog: list, create, read, update, delete, reserve.

    Anyone may read; writes need a service token from orders with the scope
    ``catalog:write``, or a staff user (HTTP Basic). The list is paged by page
    number (``?page=&page_size=``). API version 2 is ``serializer_class``;
    version 1 shows the older representation.
    """

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    serializer_classes = {"1": ProductV1Serializer}
    authentication_classes = [ServiceTokenAuthentication, BasicAuthentication]

    def get_permissions(self) -> Sequence[Any]:  # a composition is no subclass
        if self.request.method in SAFE_METHODS:
            return [AllowAny()]
        return [CanWriteCatalog()]

    @extend_schema(
        request=ReservationSerializer,
        responses={
            200: ProductSerializer,
            409: problem_response(
                "Not enough stock: `available` says how many units are left.",
                code="insufficient_stock",
                extensions={"available": {"type": "integer", "minimum": 0}},
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def reserve(self, request: Request, pk: str | None = None) -> Response:
        """Take ``quantity`` units out of stock, or answer 409 if there are fewer."""
        reservation = ReservationSerializer(data=request.data)
        reservation.is_valid(raise_exception=True)
        quantity = reservation.validated_data["quantity"]
        with transaction.atomic():
            product = (
                self.get_queryset().select_for_update().get(pk=self.get_object().pk)
            )
            if product.stock < quantity:
                raise Problem(
                    status.HTTP_409_CONFLICT,
                    "insufficient_stock",
                    detail=(
                        f"Not enough stock: only {product.stock} of {product.sku} left."
                    ),
                    available=product.stock,
                )
            product.stock -= quantity
            product.save(update_fields=["stock"])
        return Response(self.get_serializer(product).data)
