from __future__ import annotations

from collections.abc import Sequence

from rest_framework import viewsets
from rest_framework.authentication import BasicAuthentication
from rest_framework.permissions import (
    SAFE_METHODS,
    AllowAny,
    BasePermission,
    IsAdminUser,
)

from catalog.models import Product
from catalog.serializers import ProductSerializer
from django_microkit import HasServiceScope, ServiceTokenAuthentication

#: Writing to the catalog takes the orders service with the catalog:write
#: scope (catalog knows no other service), or a staff user.
CanWriteCatalog = HasServiceScope("catalog:write") | IsAdminUser


class ProductViewSet(viewsets.ModelViewSet[Product]):
    """Products of the catalog: list, create, read, update, delete.

    Anyone may read; writes need a service token from orders with the scope
    ``catalog:write``, or a staff user (HTTP Basic).
    """

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    authentication_classes = [ServiceTokenAuthentication, BasicAuthentication]

    def get_permissions(self) -> Sequence[BasePermission]:
        if self.request.method in SAFE_METHODS:
            return [AllowAny()]
        return [CanWriteCatalog()]
