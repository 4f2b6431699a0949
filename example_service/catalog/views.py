from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import Product
from catalog.serializers import ProductSerializer, ReservationSerializer
from django_microkit.errors import Problem
from django_microkit.openapi import problem_response


class ProductViewSet(viewsets.ModelViewSet[Product]):
    """Products of the catalog: list, create, read, update, delete, reserve."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer

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
                    title="Not enough stock.",
                    detail=f"Only {product.stock} of {product.sku} left.",
                    available=product.stock,
                )
            product.stock -= quantity
            product.save(update_fields=["stock"])
        return Response(ProductSerializer(product).data)
