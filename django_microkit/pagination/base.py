"""What the three paginators share: the envelope, the links, the errors.

Every paginator answers ``{"results": [...], "next": url, "previous": url}``
(plus ``"count"`` where it is known) and repeats the two links in an RFC 8288
``Link`` header. Page sizes come from ``MICROKIT["PAGINATION"]`` at call time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.utils.encoding import escape_uri_path
from django.utils.http import urlencode
from rest_framework import pagination
from rest_framework.request import Request
from rest_framework.response import Response

from django_microkit.conf import microkit_settings
from django_microkit.errors.problem import ErrorItem, Problem

__all__ = [
    "BasePagination",
    "format_link_header",
    "int_query_param",
    "invalid_pagination",
    "openapi_query_parameter",
    "page_not_found",
    "page_url",
    "single_query_param",
]

_DIGITS = re.compile(r"[0-9]+")


def format_link_header(links: Sequence[tuple[str, str]]) -> str:
    """An RFC 8288 ``Link`` field value from ``(uri, rel)`` pairs.

    The URIs come from :func:`page_url` and are already percent-encoded; any
    character RFC 3986 does not allow in a URI (``<``, ``>``, ``"``, spaces) is
    encoded again here so that the value always parses.
    """
    return ", ".join(f'<{_safe_uri(uri)}>; rel="{rel}"' for uri, rel in links)


_UNSAFE_URI = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")


def _safe_uri(uri: str) -> str:
    return _UNSAFE_URI.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), uri)


def page_url(request: Request, changes: dict[str, str | None]) -> str:
    """The absolute URL of this request with pagination parameters changed.

    Other query parameters keep their order; the changed ones come last, and a
    ``None`` value removes the parameter. The format is stable so that clients
    and caches see the same URL for the same page.
    """
    params = [
        (key, value)
        for key, values in request.query_params.lists()
        if key not in changes
        for value in values
    ]
    params.extend((key, value) for key, value in changes.items() if value is not None)
    # The Django request's methods: DRF's Request would look them up there.
    django_request = getattr(request, "_request", request)
    url = django_request.build_absolute_uri(escape_uri_path(django_request.path))
    return f"{url}?{urlencode(params)}" if params else url


def openapi_query_parameter(
    name: str, description: str, schema: dict[str, Any]
) -> dict[str, Any]:
    """An optional query parameter, as an OpenAPI parameter object."""
    return {
        "name": name,
        "required": False,
        "in": "query",
        "description": description,
        "schema": schema,
    }


def invalid_pagination(parameter: str, detail: str, code: str = "invalid") -> Problem:
    """The 400 ``invalid_pagination`` problem, its one error item naming
    ``parameter`` with ``code`` (``not_an_integer``, ``max_value`` …)."""
    item: ErrorItem = {"code": code, "detail": detail, "parameter": parameter}
    return Problem(
        400,
        "invalid_pagination",
        detail="The pagination query parameters are not valid.",
        errors=[item],
    )


def page_not_found() -> Problem:
    """The 404 ``page_not_found`` problem of a page beyond the end of the list."""
    return Problem(
        404,
        "page_not_found",
        detail="The requested page is beyond the end of the list.",
    )


def single_query_param(request: Request, name: str) -> str | None:
    """The value of query parameter ``name``, ``None`` when absent; given twice
    it is a problem."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise invalid_pagination(name, f"Give '{name}' at most once.", "duplicate")
    return values[0]


def int_query_param(
    request: Request,
    name: str,
    *,
    minimum: int,
    maximum: int | None = None,
    maximum_reason: str = "",
) -> int | None:
    """The integer value of query parameter ``name``, ``None`` when absent.

    A whole number beyond ``maximum`` is refused as too large whatever its
    length: its digits are counted before it is converted.
    """
    raw = single_query_param(request, name)
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw):
        raise invalid_pagination(
            name, f"'{name}' must be a whole number.", "not_an_integer"
        )
    digits = raw.lstrip("0") or "0"
    # Past this many digits int() refuses (CPython's limit on conversions).
    longest = len(str(maximum)) if maximum is not None else 4300
    value = int(digits) if len(digits) <= longest else None
    if value is not None and value < minimum:
        raise invalid_pagination(
            name, f"'{name}' must be at least {minimum}.", "min_value"
        )
    if value is None or (maximum is not None and value > maximum):
        if maximum is None:
            raise invalid_pagination(name, f"'{name}' is too large.", "max_value")
        raise invalid_pagination(
            name, f"'{name}' must be at most {maximum}{maximum_reason}.", "max_value"
        )
    return value


class BasePagination(pagination.BasePagination):
    """What the three paginators share: page size, envelope, links, schema.

    Class attributes left at ``None`` take their value from
    ``MICROKIT["PAGINATION"]`` when a request is paged; a subclass sets them to
    pin a value for the views that use it. A paginator of the service's own
    subclasses it, answers ``get_next_link()`` and ``get_previous_link()``
    (built with :func:`page_url`), and gets the envelope and ``Link`` header.
    """

    #: Items per page when the client does not ask (``PAGE_SIZE``).
    page_size: int | None = None
    #: Largest page a client may ask for (``MAX_PAGE_SIZE``).
    max_page_size: int | None = None
    #: Query parameter a client sets the page size with.
    page_size_query_param = "page_size"
    #: Name prefix of the envelope component in the OpenAPI schema.
    schema_component_prefix = "Paginated"
    #: Problem statuses a paged list can answer, for the OpenAPI schema.
    problem_statuses: tuple[int, ...] = (400, 404)
    display_page_controls = False

    request: Request | None = None
    _next: str | None = None
    _previous: str | None = None

    def get_page_size(self, request: Request) -> int:
        """The page size asked for with ``page_size_query_param``, or the default."""
        asked = int_query_param(
            request,
            self.page_size_query_param,
            minimum=1,
            maximum=self.get_max_page_size(),
        )
        return self.get_default_page_size() if asked is None else asked

    def get_default_page_size(self) -> int:
        size = self.page_size
        return int(microkit_settings.PAGINATION["PAGE_SIZE"]) if size is None else size

    def get_max_page_size(self) -> int:
        size = self.max_page_size
        if size is None:
            return int(microkit_settings.PAGINATION["MAX_PAGE_SIZE"])
        return size

    def get_next_link(self) -> str | None:
        return self._next

    def get_previous_link(self) -> str | None:
        return self._previous

    def get_envelope(self, data: Any) -> dict[str, Any]:
        return {
            "results": data,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
        }

    def get_headers(self) -> dict[str, str]:
        pairs = ((self.get_next_link(), "next"), (self.get_previous_link(), "prev"))
        links = [(uri, rel) for uri, rel in pairs if uri is not None]
        return {"Link": format_link_header(links)} if links else {}

    def get_paginated_response(self, data: Any) -> Response:
        return Response(self.get_envelope(data), headers=self.get_headers())

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next", "previous"],
            "properties": {
                "results": schema,
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next page; null on the last page.",
                    "example": self._example_link("next"),
                },
                "previous": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The previous page; null on the first page.",
                    "example": None,
                },
            },
        }

    def _example_link(self, rel: str) -> str:
        raise NotImplementedError

    def _page_size_parameter(self) -> dict[str, Any]:
        return openapi_query_parameter(
            self.page_size_query_param,
            f"Number of results per page (default {self.get_default_page_size()}).",
            {"type": "integer", "minimum": 1, "maximum": self.get_max_page_size()},
        )
