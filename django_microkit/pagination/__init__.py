"""One envelope for every list endpoint, whichever way it is paged.

Every paginator here answers ``{"results": [...], "next": url, "previous": url}``
(plus ``"count"`` when it is known) and repeats the two links in an RFC 8288
``Link`` header, so a client walks any list the same way: follow ``next``
until it is ``null``. Page sizes come from ``MICROKIT["PAGINATION"]`` at call
time; a paginator subclass may pin its own. Malformed or out-of-range input is
a problem response (``invalid_pagination``, ``page_not_found``), never a 500
and never a silent clamp.

- :class:`PageNumberPagination`: ``?page=&page_size=`` (the default).
- :class:`LimitOffsetPagination`: ``?limit=&offset=``.
- :class:`CursorPagination`: ``?cursor=&page_size=``, for large or busy tables.
"""

from __future__ import annotations

from django_microkit.pagination.base import BasePagination, format_link_header
from django_microkit.pagination.cursor import CursorPagination
from django_microkit.pagination.offset import (
    LimitOffsetPagination,
    PageNumberPagination,
)

__all__ = [
    "BasePagination",
    "CursorPagination",
    "LimitOffsetPagination",
    "PageNumberPagination",
    "format_link_header",
]
