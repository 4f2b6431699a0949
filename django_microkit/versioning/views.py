"""Evolving a resource between versions inside one view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from rest_framework.generics import GenericAPIView
    from rest_framework.serializers import BaseSerializer

    _ViewBase = GenericAPIView[Any]
else:
    _ViewBase = object

__all__ = ["VersionedSerializerMixin"]


class VersionedSerializerMixin(_ViewBase):
    """Chooses the serializer by ``request.version``.

    ::

        class ProductList(VersionedSerializerMixin, generics.ListAPIView):
            serializer_classes = {"1": ProductV1Serializer, "2": ProductSerializer}

    A version missing from :attr:`serializer_classes` uses ``serializer_class``.
    """

    serializer_classes: Mapping[str, type[BaseSerializer[Any]]] = {}

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        version = getattr(self.request, "version", None)
        chosen = self.serializer_classes.get(version) if version is not None else None
        if chosen is not None:
            return chosen
        if getattr(self, "serializer_class", None) is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} has no serializer for API version "
                f"{version!r}: add it to serializer_classes or set serializer_class."
            )
        return super().get_serializer_class()
