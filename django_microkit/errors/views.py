"""Django's error views, answering with problem documents.

Django calls these for the errors that never reach a DRF view: an unknown URL,
a ``SuspiciousOperation`` or ``RequestDataTooBig`` raised while reading the
request, an exception escaping a plain Django view, a CSRF failure. A service
points its root URLconf and ``CSRF_FAILURE_VIEW`` at them::

    # urls.py
    handler400 = "django_microkit.errors.bad_request"
    handler403 = "django_microkit.errors.permission_denied"
    handler404 = "django_microkit.errors.page_not_found"
    handler500 = "django_microkit.errors.server_error"

    # settings.py
    CSRF_FAILURE_VIEW = "django_microkit.errors.csrf_failure"

Django has already logged (and signalled) the error when it calls them, so they
only build the response.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.middleware import csrf
from django.views import defaults
from django.views.csrf import csrf_failure as django_csrf_failure
from rest_framework.exceptions import PermissionDenied

from django_microkit.errors.handler import get_handler, prefers_html
from django_microkit.errors.problem import Problem

__all__ = [
    "bad_request",
    "csrf_failure",
    "page_not_found",
    "permission_denied",
    "server_error",
]

#: Django's CSRF reasons that quote nothing from the request, so are safe to
#: return; the others (bad Origin or Referer) would echo a header.
_SAFE_CSRF_REASONS = frozenset(
    {
        csrf.REASON_NO_REFERER,
        csrf.REASON_NO_CSRF_COOKIE,
        csrf.REASON_CSRF_TOKEN_MISSING,
        csrf.REASON_MALFORMED_REFERER,
        csrf.REASON_INSECURE_REFERER,
    }
)


def _respond(
    request: HttpRequest,
    exception: Exception,
    html_view: Callable[[HttpRequest, Exception], HttpResponse],
) -> HttpResponse:
    if prefers_html(request):
        return html_view(request, exception)
    handler = get_handler(exception, request)
    return handler.get_response(handler.get_problem(exception))


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: 400 ``bad_request``; 413 ``request_too_large`` for
    ``RequestDataTooBig`` and too many fields or files."""
    return _respond(request, exception, defaults.bad_request)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler403``: 403 ``permission_denied``."""
    return _respond(request, exception, defaults.permission_denied)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: 404 ``not_found`` (unknown URLs included)."""
    return _respond(request, exception, defaults.page_not_found)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: a generic 500 ``server_error``."""
    if prefers_html(request):
        return defaults.server_error(request)
    # Django calls this while handling the exception (also on the async path,
    # where asgiref re-raises it in the worker thread).
    exception = sys.exc_info()[1]
    if not isinstance(exception, Exception):
        exception = Exception()
    handler = get_handler(exception, request)
    return handler.get_response(handler.from_unhandled_exception(exception))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: 403 ``csrf_failed``. The reason is given when it
    quotes nothing from the request."""
    if reason in _SAFE_CSRF_REASONS:
        exception: Exception = Problem(403, "csrf_failed", detail=reason)
    else:  # answered as DRF's CSRF refusal is: with a generic detail
        exception = PermissionDenied(f"CSRF Failed: {reason}")
    return _respond(request, exception, lambda r, _: django_csrf_failure(r, reason))
