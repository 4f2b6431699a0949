"""Paging by position: numbered pages and limit/offset windows.

Both count the list only as much as ``MICROKIT["PAGINATION"]["COUNT"]`` and
``COUNT_LIMIT`` allow, because ``COUNT(*)`` over a large table is the slow part
of an offset-paged list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from rest_framework.request import Request

from django_microkit.conf import microkit_settings
from django_microkit.pagination.base import (
    BasePagination,
    int_query_param,
    openapi_query_parameter,
    page_not_found,
    page_url,
)

if TYPE_CHECKING:
    from rest_framework.views import APIView

__all__ = [
    "COUNT_EXACT",
    "COUNT_MODES",
    "COUNT_NONE",
    "COUNT_PREFER",
    "LimitOffsetPagination",
    "PageNumberPagination",
]

#: ``MICROKIT["PAGINATION"]["COUNT"]`` values, and ``count_mode`` values.
COUNT_EXACT = "exact"
COUNT_NONE = "none"
COUNT_PREFER = "prefer"
COUNT_MODES = (COUNT_EXACT, COUNT_NONE, COUNT_PREFER)

# Offsets beyond this are refused even without MAX_OFFSET: a database cannot
# skip that many rows in useful time, and larger numbers overflow some drivers.
_OFFSET_CEILING = 10**12


class _CountingPagination(BasePagination):
    """Offset-based paging with a total that can be skipped, asked for or capped.

    ``COUNT`` decides when the total is computed: ``"exact"`` always, ``"none"``
    never, ``"prefer"`` only for a request with ``Prefer: count=exact``.
    ``COUNT_LIMIT`` caps the work: at most that many rows plus one are counted
    and a larger total is left out of the envelope rather than guessed.
    """

    #: ``"exact"``, ``"none"`` or ``"prefer"`` (``COUNT``).
    count_mode: str | None = None
    #: Deepest offset a client may reach (``MAX_OFFSET``).
    max_offset: int | None = None

    count: int | None = None
    _count_preferred = False

    def get_count_mode(self) -> str:
        mode = self.count_mode
        return str(microkit_settings.PAGINATION["COUNT"]) if mode is None else mode

    def get_count_limit(self) -> int | None:
        """Count at most this many rows (``COUNT_LIMIT``); ``None`` counts all."""
        limit: int | None = microkit_settings.PAGINATION["COUNT_LIMIT"]
        return limit

    def get_max_offset(self) -> int:
        if self.max_offset is not None:
            return min(self.max_offset, _OFFSET_CEILING)
        configured: int | None = microkit_settings.PAGINATION["MAX_OFFSET"]
        return _OFFSET_CEILING if configured is None else configured

    def _wants_count(self, request: Request) -> bool:
        mode = self.get_count_mode()
        if mode == COUNT_PREFER:
            self._count_preferred = _prefers_count(request)
            return self._count_preferred
        return mode != COUNT_NONE

    def _count(self, queryset: QuerySet[Any] | Sequence[Any]) -> int | None:
        limit = self.get_count_limit()
        if not isinstance(queryset, QuerySet):
            total = len(queryset)
            return None if limit is not None and total > limit else total
        if limit is None:
            return queryset.count()
        # COUNT(*) over a sliced subquery stops scanning after limit + 1 rows.
        total = queryset[: limit + 1].count()
        return None if total > limit else total

    def paginate_queryset(
        self,
        queryset: QuerySet[Any] | Sequence[Any],
        request: Request,
        view: APIView | None = None,
    ) -> list[Any]:
        """One page, with one extra row fetched to learn whether more follow."""
        offset, size = self._window(request)
        self.request = request
        self.count = self._count(queryset) if self._wants_count(request) else None
        if self.count is not None and offset and offset >= self.count:
            raise page_not_found()
        rows = list(queryset[offset : offset + size + 1])
        if offset and not rows:
            raise page_not_found()
        self._next = self._link(offset + size, size) if len(rows) > size else None
        self._previous = self._link(max(offset - size, 0), size) if offset else None
        return rows[:size]

    def _window(self, request: Request) -> tuple[int, int]:
        """The offset and the size of the page asked for."""
        raise NotImplementedError

    def _link(self, offset: int, size: int) -> str:
        raise NotImplementedError

    def get_envelope(self, data: Any) -> dict[str, Any]:
        envelope = super().get_envelope(data)
        if self.count is not None:
            envelope["count"] = self.count
        return envelope

    def get_headers(self) -> dict[str, str]:
        headers = super().get_headers()
        if self.get_count_mode() == COUNT_PREFER:
            headers["Vary"] = "Prefer"
            if self._count_preferred:
                headers["Preference-Applied"] = "count=exact"
        return headers

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        result = super().get_paginated_response_schema(schema)
        result["properties"]["count"] = {
            "type": "integer",
            "minimum": 0,
            "description": "Total number of results. Absent when the service "
            "does not count (see the Prefer parameter) or the total is too large "
            "to count.",
            "example": 123,
        }
        return result

    def _count_parameters(self) -> list[dict[str, Any]]:
        if self.get_count_mode() != COUNT_PREFER:
            return []
        return [
            {
                "name": "Prefer",
                "required": False,
                "in": "header",
                "description": "Send `count=exact` to have the total counted.",
                "schema": {"type": "string", "enum": ["count=exact"]},
            }
        ]


_PREFER_TOKEN = re.compile(r'\s*count\s*=\s*"?exact"?\s*$', re.IGNORECASE)


def _prefers_count(request: Request) -> bool:
    """Whether an RFC 7240 ``Prefer`` header asks for ``count=exact``."""
    header = getattr(request, "_request", request).META.get("HTTP_PREFER", "")
    return any(
        _PREFER_TOKEN.match(preference.split(";", 1)[0])
        for preference in header.split(",")
    )


class PageNumberPagination(_CountingPagination):
    """Numbered pages: ``?page=`` from 1 and ``?page_size=``.

    ``GET /products/?page=2&page_size=50`` answers::

        HTTP/1.1 200 OK
        Link: <https://api.example.com/products/?page=3&page_size=50>; rel="next",
              <https://api.example.com/products/?page=1&page_size=50>; rel="prev"

        {"results": [...], "next": "https://…?page=3&page_size=50",
         "previous": "https://…?page=1&page_size=50", "count": 1234}
    """

    page_query_param = "page"

    def _window(self, request: Request) -> tuple[int, int]:
        size = self.get_page_size(request)
        page = int_query_param(
            request,
            self.page_query_param,
            minimum=1,
            maximum=self.get_max_offset() // size + 1,
            maximum_reason=f" with {self.page_size_query_param}={size}",
        )
        self.page_number = 1 if page is None else page
        return (self.page_number - 1) * size, size

    def _link(self, offset: int, size: int) -> str:
        assert self.request is not None
        page = offset // size + 1
        return page_url(self.request, {self.page_query_param: str(page)})

    def _example_link(self, rel: str) -> str:
        return f"https://api.example.com/items/?{self.page_query_param}=3"

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            openapi_query_parameter(
                self.page_query_param,
                f"Page number, from 1, at most {self.get_max_offset()} "
                f"/ {self.page_size_query_param} + 1.",
                # The bound every page size allows: a smaller page size
                # reaches further, up to the page holding the deepest offset.
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.get_max_offset() // self.get_max_page_size() + 1,
                },
            ),
            self._page_size_parameter(),
            *self._count_parameters(),
        ]


class LimitOffsetPagination(_CountingPagination):
    """A window of rows: ``?limit=`` rows after skipping ``?offset=`` rows.

    ``GET /orders/?limit=50&offset=100`` answers::

        HTTP/1.1 200 OK
        Link: <https://api.example.com/orders/?limit=50&offset=150>; rel="next",
              <https://api.example.com/orders/?limit=50&offset=50>; rel="prev"

        {"results": [...], "next": "https://…?limit=50&offset=150",
         "previous": "https://…?limit=50&offset=50", "count": 1234}
    """

    page_size_query_param = "limit"
    offset_query_param = "offset"

    def _window(self, request: Request) -> tuple[int, int]:
        self.limit = self.get_page_size(request)
        offset = int_query_param(
            request, self.offset_query_param, minimum=0, maximum=self.get_max_offset()
        )
        self.offset = 0 if offset is None else offset
        return self.offset, self.limit

    def _link(self, offset: int, size: int) -> str:
        assert self.request is not None
        return page_url(
            self.request,
            {
                self.page_size_query_param: str(size),
                self.offset_query_param: str(offset) if offset else None,
            },
        )

    def _example_link(self, rel: str) -> str:
        return f"https://api.example.com/items/?{self.page_size_query_param}=20&{self.offset_query_param}=40"

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            self._page_size_parameter(),
            openapi_query_parameter(
                self.offset_query_param,
                "Number of results to skip.",
                {"type": "integer", "minimum": 0, "maximum": self.get_max_offset()},
            ),
            *self._count_parameters(),
        ]
