"""Problem documents for plain Django views.

DRF views are covered by the exception handler. :class:`ProblemMiddleware`
gives plain Django views (sync or async) the same: a ``Problem``,
``Http404``, ``PermissionDenied``, ``ValidationError`` or unexpected exception
they raise becomes a problem response, and Django's bare ``405`` response
(``View.http_method_not_allowed``, ``require_http_methods``) becomes a
``method_not_allowed`` problem with its ``Allow`` header.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase, HttpResponseNotAllowed
from django.utils.cache import patch_vary_headers
from rest_framework.exceptions import MethodNotAllowed

from django_microkit._middleware import Middleware
from django_microkit.errors.handler import get_handler, prefers_html

__all__ = ["ProblemMiddleware"]

#: Headers that describe the body being replaced, so are not carried over.
_BODY_HEADERS = frozenset(
    {"content-type", "content-length", "content-encoding", "etag"}
)


class ProblemMiddleware(Middleware[None]):
    """Answer plain Django views' errors with problem documents.

    Place it after the request-ID middleware, so converted responses carry the
    request ID (system check ``django_microkit.E020``).
    """

    def after(
        self, request: HttpRequest, response: HttpResponseBase, state: None
    ) -> HttpResponseBase:
        return self.convert_response(request, response)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        """An exception a view raised: the problem response (``None`` lets
        Django answer an HTML client with ``HTML_FALLBACK``)."""
        if prefers_html(request):
            return None
        return get_handler(exception, request).run()

    def convert_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        """Django's bare 405 becomes a problem; other responses pass untouched."""
        if not isinstance(response, HttpResponseNotAllowed) or prefers_html(request):
            return response
        exception = MethodNotAllowed(str(request.method))
        handler = get_handler(exception, request)
        problem = handler.get_problem(exception)
        problem.headers["Allow"] = response["Allow"]
        converted = handler.get_response(problem)
        for header, value in response.items():
            if header.lower() not in _BODY_HEADERS and header.lower() != "vary":
                converted.headers.setdefault(header, value)
        if response.has_header("Vary"):
            patch_vary_headers(
                converted, [v.strip() for v in response["Vary"].split(",")]
            )
        converted.cookies = response.cookies
        return converted
