"""Views paged by each django-microkit paginator, under /paging/."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import path
from rest_framework import generics, serializers
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_microkit.pagination import (
    CursorPagination,
    LimitOffsetPagination,
    PageNumberPagination,
)
from tests.testapp.models import Book


class BookSerializer(serializers.ModelSerializer[Book]):
    class Meta:
        model = Book
        fields = ["id", "title", "score", "rank", "published", "shelf"]


class BookList(generics.ListAPIView[Book]):
    """Books, filtered by ``?score=`` and ``?shelf=``."""

    serializer_class = BookSerializer
    order: tuple[str, ...] = ()
    ordering: list[str] | None = None
    ordering_fields: list[str] | None = None

    def get_queryset(self) -> QuerySet[Book]:
        queryset: QuerySet[Book] = Book.objects.all()
        if "score" in self.request.query_params:
            queryset = queryset.filter(score=self.request.query_params["score"])
        if "shelf" in self.request.query_params:
            queryset = queryset.filter(shelf__name=self.request.query_params["shelf"])
        return queryset.order_by(*self.order) if self.order else queryset


class SmallPages(PageNumberPagination):
    page_size = 2
    max_page_size = 3


class ShallowLimitOffset(LimitOffsetPagination):
    max_offset = 4
    count_mode = "none"


class ScoreCursor(CursorPagination):
    ordering = "-score"


class PlainList(APIView):
    """A Python list, not a queryset, paged by page number."""

    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(list(range(1, 8)), request, self)
        return paginator.get_paginated_response(page)


def _books(pagination: type[Any], *order: str, **attrs: Any) -> Any:
    return BookList.as_view(pagination_class=pagination, order=order, **attrs)


CURSOR_ORDERINGS: dict[str, tuple[str, ...]] = {
    "pk": (),
    "score": ("score",),
    "desc-multi": ("-published", "-score"),
    "shelf": ("shelf__name", "-score"),
    "rank": ("rank",),
    "rank-desc": ("-rank", "title"),
    "price": ("price", "published"),
    "year": ("-published__year", "title"),
    "id-desc": ("-id",),
    "code": ("code",),
    "day-at": ("-day", "at"),
    "length": ("length",),
    "weight": ("-weight",),
}

urlpatterns = [
    path("paging/page/", _books(PageNumberPagination, "id")),
    path("paging/limit/", _books(LimitOffsetPagination, "id")),
    path("paging/small/", _books(SmallPages, "id")),
    path("paging/shallow/", _books(ShallowLimitOffset, "id")),
    path("paging/list/", PlainList.as_view()),
    path(
        "paging/cursor/ordering-filter/",
        _books(
            CursorPagination,
            filter_backends=[OrderingFilter],
            ordering_fields=["score", "title"],
            ordering=["id"],
        ),
    ),
    path("paging/cursor/paginator-ordering/", _books(ScoreCursor)),
    *(
        path(f"paging/cursor/{name}/", _books(CursorPagination, *order))
        for name, order in CURSOR_ORDERINGS.items()
    ),
]
