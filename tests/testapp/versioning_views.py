"""Views for each django-microkit versioning scheme, under /versioning/."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import exceptions, generics, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_microkit.errors import Problem
from django_microkit.pagination import CursorPagination
from django_microkit.versioning import (
    AcceptHeaderVersioning,
    HeaderVersioning,
    NegotiatedVersioning,
    URLPathVersioning,
    VersionedSerializerMixin,
)
from django_microkit.versioning.schema import SchemaView
from tests.testapp.models import Book


class Echo(APIView):
    """Says which version it saw; ``?fail=`` makes it fail instead."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, **kwargs: Any) -> Response:
        fail = request.query_params.get("fail")
        if fail == "not_found":
            raise exceptions.NotFound()
        if fail == "problem":
            raise Problem(409, "conflict", detail="Try again.")
        return Response({"version": request.version})


class BookV1Serializer(serializers.ModelSerializer[Book]):
    class Meta:
        model = Book
        fields = ["id", "title"]


class BookV2Serializer(serializers.ModelSerializer[Book]):
    class Meta:
        model = Book
        fields = ["id", "title", "score"]


class Books(VersionedSerializerMixin, generics.ListAPIView[Book]):
    """Version 1 shows less; later versions use ``serializer_class``."""

    serializer_classes = {"1": BookV1Serializer}
    serializer_class = BookV2Serializer
    pagination_class = CursorPagination

    def get_queryset(self) -> QuerySet[Book]:
        queryset: QuerySet[Book] = Book.objects.order_by("id")
        return queryset


class StrictBooks(Books):
    """Only version 2 has a serializer; left out of the OpenAPI schema."""

    serializer_classes = {"2": BookV2Serializer}
    serializer_class = None  # type: ignore[assignment]  # no default version
    schema = None


SCHEMES = {
    "negotiated": NegotiatedVersioning,
    "accept": AcceptHeaderVersioning,
    "header": HeaderVersioning,
}

api_patterns: list[URLPattern] = [
    *(
        path(f"versioning/{name}/echo/", Echo.as_view(versioning_class=scheme))
        for name, scheme in SCHEMES.items()
    ),
    *(
        path(f"versioning/{name}/books/", Books.as_view(versioning_class=scheme))
        for name, scheme in SCHEMES.items()
    ),
    path(
        "versioning/v<str:version>/echo/",
        Echo.as_view(versioning_class=URLPathVersioning),
    ),
    path(
        "versioning/v<str:version>/books/",
        Books.as_view(versioning_class=URLPathVersioning),
    ),
    path("versioning/path/echo/", Echo.as_view(versioning_class=URLPathVersioning)),
    path("versioning/default/echo/", Echo.as_view()),
    path("versioning/unversioned/echo/", Echo.as_view(versioning_class=None)),
    path(
        "versioning/json-only/echo/",
        Echo.as_view(
            versioning_class=NegotiatedVersioning, renderer_classes=[JSONRenderer]
        ),
    ),
]

urlpatterns = [
    *api_patterns,
    path("versioning/strict/books/", StrictBooks.as_view()),
    path(
        "versioning/schema/",
        SchemaView.as_view(urlconf=api_patterns),
        name="versioning-schema",
    ),
    path(
        "versioning/docs/",
        SpectacularSwaggerView.as_view(url_name="versioning-schema"),
    ),
]
