"""Problem documents for plain Django views.

DRF views are covered by the exception handler. :class:`ProblemMiddleware`
gives plain Django views (sync or async) the same: a ``Problem``,
``Http404``, ``PermissionDenied``, ``ValidationError`` or unexpected exception
they raise becomes a problem response, and Django's bare ``405`` response
(``View.http_method_not_allowed``, ``require_http_methods``) becomes a
``method_not_allowed`` problem with its ``Allow`` header.

It also answers API clients in place of ``CommonMiddleware``'s ``APPEND_SLASH``
redirect, a ``301`` that clients follow with a ``GET`` and no body (RFC 9110
§15.4.2): a ``308 Permanent Redirect`` keeps the method and the body
(§15.4.9), and its body says where to go.

:func:`convert_error_page` turns the HTML pages Django answers errors with
outside any view (an unknown URL, a CSRF refusal, an exception escaping a
middleware, the technical pages of ``DEBUG``) into the problem the handler
gives; :class:`~django_microkit.middleware.MicrokitMiddleware` applies it,
placed first where it sees those pages.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import BadRequest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    HttpResponsePermanentRedirect,
)
from django.middleware.common import CommonMiddleware
from django.utils.cache import patch_vary_headers
from django.utils.encoding import escape_uri_path
from django.utils.http import escape_leading_slashes
from rest_framework.exceptions import MethodNotAllowed, PermissionDenied

from django_microkit._middleware import Middleware
from django_microkit.checks import is_subclass_path
from django_microkit.conf import derived
from django_microkit.errors.handler import (
    ProblemResponse,
    get_handler,
    prefers_html,
    problem_content_type,
    reason_phrase,
)
from django_microkit.errors.problem import ProblemDocument
from django_microkit.request_id import get_request_id

__all__ = ["ProblemMiddleware", "convert_error_page"]

#: Headers that describe the body being replaced, so are not carried over.
_BODY_HEADERS = frozenset(
    {"content-type", "content-length", "content-encoding", "etag"}
)

#: Django's error pages: HTML, or text where ``DEBUG``'s technical 500 page
#: answers a client that does not accept HTML (``Accept: application/json``).
_ERROR_PAGES = frozenset({"text/html", "text/plain"})

#: Methods ``CsrfViewMiddleware`` accepts unchecked (RFC 9110 safe methods).
_CSRF_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: Methods ``CommonMiddleware`` refuses to redirect under ``DEBUG`` (its
#: ``get_full_path_with_slash``), as the redirect would lose the body.
_SLASH_REFUSED_METHODS = frozenset({"POST", "PUT", "PATCH"})

#: Django's own ``APPEND_SLASH`` rule (``should_redirect_with_slash``): the path
#: resolves only with a slash, and the view does not refuse one.
_COMMON = CommonMiddleware(lambda request: HttpResponse())


@derived(settings=("MIDDLEWARE",))
def _appends_slash() -> bool:
    """Whether ``CommonMiddleware`` (or a subclass) is installed: Django reads
    ``APPEND_SLASH`` only through it."""
    return any(
        is_subclass_path(path, "django.middleware.common.CommonMiddleware")
        for path in settings.MIDDLEWARE
    )


class ProblemMiddleware(Middleware[None]):
    """Answer plain Django views' errors with problem documents.

    Place it after the request-ID middleware, so converted responses carry the
    request ID (system check ``django_microkit.E020``), and after
    ``CommonMiddleware``, so it answers the ``APPEND_SLASH`` redirect first.
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
        """Django's bare 405 becomes a problem and the ``APPEND_SLASH``
        redirect a 308; other responses pass untouched."""
        if response.status_code in (301, 404, 500):
            return self.redirect_with_slash(request, response)
        if not isinstance(response, HttpResponseNotAllowed) or prefers_html(request):
            return response
        exception = MethodNotAllowed(str(request.method))
        handler = get_handler(exception, request)
        problem = handler.get_problem(exception)
        problem.headers["Allow"] = response["Allow"]
        return _keep_headers(response, handler.get_response(problem))

    def redirect_with_slash(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        """A 404 that ``CommonMiddleware`` would turn into its slash redirect
        (this middleware placed after it), that redirect itself, or the 500 of
        the ``RuntimeError`` it raises instead for a ``POST``, ``PUT`` or
        ``PATCH`` under ``DEBUG`` (placed before it), becomes a 308 to the URL
        with the slash, with an ``append_slash`` body of the problem
        document's shape; a client preferring HTML keeps Django's answer."""
        status = response.status_code
        if status == 500 and not (
            settings.DEBUG and request.method in _SLASH_REFUSED_METHODS
        ):
            return response
        if status != 301 and not _appends_slash():
            return response
        if not _COMMON.should_redirect_with_slash(request):
            return response
        location = escape_leading_slashes(
            request.get_full_path(force_append_slash=True)
        )
        if status == 301 and response.get("Location") != location:
            return response  # a redirect of another middleware's
        if prefers_html(request):
            return response
        document: ProblemDocument = {
            "type": "about:blank",
            "title": reason_phrase(308),
            "status": 308,
            "detail": f"This resource's URL ends with a slash: {location}",
            "instance": escape_uri_path(request.path),
            "code": "append_slash",
        }
        request_id = get_request_id()
        if request_id is not None:
            document["request_id"] = request_id
        redirect = HttpResponsePermanentRedirect(
            location,
            preserve_request=True,
            content=json.dumps(document, ensure_ascii=False),
            content_type=problem_content_type(request),
        )
        patch_vary_headers(redirect, ("Accept",))
        return redirect


def _keep_headers(
    response: HttpResponseBase, converted: HttpResponseBase
) -> HttpResponseBase:
    """``converted`` with the headers (but those describing the body) and the
    cookies of the ``response`` it replaces: other middleware set them."""
    for header, value in response.items():
        if header.lower() not in _BODY_HEADERS and header.lower() != "vary":
            converted.headers.setdefault(header, value)
    if response.has_header("Vary"):
        patch_vary_headers(converted, [v.strip() for v in response["Vary"].split(",")])
    converted.cookies = response.cookies
    return converted


def _refused_by_csrf(request: HttpRequest) -> bool:
    """Whether a 403 is ``CsrfViewMiddleware``'s refusal: it checks an unsafe
    request to a view that is not exempt, and marks the request it accepts."""
    match = request.resolver_match
    return (
        request.method not in _CSRF_SAFE_METHODS
        and match is not None
        and not getattr(match.func, "csrf_exempt", False)
        and not getattr(request, "csrf_processing_done", False)
    )


def convert_error_page(
    request: HttpRequest, response: HttpResponseBase
) -> HttpResponseBase:
    """An HTML or plain-text 400, 403, 404 or 500 page becomes the problem the
    configured handler gives; other responses, and clients preferring HTML,
    are untouched.

    Django answers errors met outside a view with such pages, whatever the
    error views: an unknown URL, a CSRF refusal (``CSRF_FAILURE_VIEW``),
    ``SuspiciousOperation`` or an exception escaping a middleware, and under
    ``DEBUG`` its technical 404 and 500 pages. The exception is gone by then:
    a 400 is ``bad_request``, a 403 ``csrf_failed`` when ``CsrfViewMiddleware``
    refused the request (else ``permission_denied``), a 404 ``not_found``, a
    500 the generic ``server_error``. Django has already logged the error.
    """
    status = response.status_code
    if (
        status not in (400, 403, 404, 500)
        or isinstance(response, ProblemResponse)  # the common case, first
        or response.get("Content-Type", "").partition(";")[0] not in _ERROR_PAGES
        or prefers_html(request)
    ):
        return response
    exception: Exception
    if status == 400:
        exception = BadRequest()
    elif status == 404:
        exception = Http404()
    elif status == 500:
        exception = Exception()
    elif _refused_by_csrf(request):
        exception = PermissionDenied("CSRF Failed: ")  # as DRF's refusal
    else:
        exception = DjangoPermissionDenied()
    handler = get_handler(exception, request)
    problem = (
        handler.from_unhandled_exception(None)
        if status == 500
        else handler.get_problem(exception)
    )
    return _keep_headers(response, handler.get_response(problem))
