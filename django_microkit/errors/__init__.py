"""RFC 9457 problem details: the one error body every service returns.

A service raises :class:`Problem` for its own errors; DRF's exception handler
(:func:`exception_handler`), Django's error views (:func:`bad_request`,
:func:`permission_denied`, :func:`page_not_found`, :func:`server_error`,
:func:`csrf_failure`) and :class:`ProblemMiddleware` turn every error, raised
by the service, DRF or Django, into the same problem document. See
``docs/errors.md``.
"""

from __future__ import annotations

from django_microkit.errors.handler import (
    JSON,
    PROBLEM_JSON,
    ExceptionHandler,
    ProblemResponse,
    exception_handler,
    get_handler_class,
)
from django_microkit.errors.middleware import ProblemMiddleware
from django_microkit.errors.problem import (
    ErrorItem,
    Problem,
    ProblemDocument,
    error_items,
    json_pointer,
)
from django_microkit.errors.views import (
    bad_request,
    csrf_failure,
    page_not_found,
    permission_denied,
    server_error,
)

__all__ = [
    "JSON",
    "PROBLEM_JSON",
    "ErrorItem",
    "ExceptionHandler",
    "Problem",
    "ProblemDocument",
    "ProblemMiddleware",
    "ProblemResponse",
    "bad_request",
    "csrf_failure",
    "error_items",
    "exception_handler",
    "get_handler_class",
    "json_pointer",
    "page_not_found",
    "permission_denied",
    "server_error",
]
