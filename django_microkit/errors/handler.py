"""From any exception to one problem response.

:class:`ExceptionHandler` is a chain of small steps a service can override one
at a time (``convert_known_exceptions`` → ``get_problem`` → ``get_document`` →
``get_response`` → ``report_exception``). DRF calls it through
:func:`exception_handler`; the Django error views and
:class:`~django_microkit.errors.ProblemMiddleware` use the same class, so one
subclass named in ``MICROKIT["ERRORS"]["HANDLER_CLASS"]`` customises every
error the service returns.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Mapping
from functools import cached_property, lru_cache
from http import HTTPStatus
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.http.request import MediaType
from django.utils.cache import patch_vary_headers
from django.utils.encoding import escape_uri_path
from django.utils.log import log_response
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.fields import get_error_detail

from django_microkit.conf import derived, microkit_settings
from django_microkit.errors.problem import Problem, ProblemDocument, error_items
from django_microkit.request_id import get_request_id

__all__ = [
    "JSON",
    "PERMISSION_REFUSAL",
    "PROBLEM_JSON",
    "ExceptionHandler",
    "ProblemResponse",
    "exception_handler",
    "get_handler",
    "get_handler_class",
    "prefers_html",
    "problem_content_type",
    "reason_phrase",
]

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"
#: The attribute of a DRF request where a refusing permission may leave the
#: precise refusal (an ``APIException``), which answers in place of DRF's generic
#: ``NotAuthenticated`` or ``PermissionDenied`` (DRF's ``|``, ``&``, ``~`` keep no
#: message of their operands).
PERMISSION_REFUSAL = "microkit_permission_refusal"

#: Accept ranges that include application/problem+json.
_PROBLEM_RANGES = frozenset(
    {("*", "*"), ("application", "*"), ("application", "problem+json")}
)

#: Methods whose validation errors concern query parameters: they carry no body.
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})

#: The code of an exception that names none of its own, by status.
_CODES_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_content",
    429: "throttled",
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

_SERVER_ERROR_DETAIL = _(
    "The server could not complete the request. "
    "Quote the request ID when reporting the problem."
)
_BAD_REQUEST_DETAIL = _("The request could not be understood.")
_TOO_LARGE_DETAIL = _("The request is larger than the server accepts.")
_NOT_FOUND_DETAIL = _("Not found.")
_PERMISSION_DENIED_DETAIL = _("You do not have permission to perform this action.")
_CSRF_DETAIL = _("CSRF verification failed.")
_DATABASE_UNAVAILABLE_DETAIL = _(
    "The service cannot reach its database right now; try again later."
)

#: Exceptions meaning the database cannot be used right now (connection refused
#: or lost, server shutting down, lock timeouts): a dependency is unavailable,
#: which is a 503, not a bug of the service.
_DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
#: Seconds a client is asked to wait before retrying after a database outage.
_DATABASE_RETRY_AFTER = "5"


#: RFC 9110 phrases that older Pythons still spell the RFC 7231 way.
_RFC9110_PHRASES = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}


def reason_phrase(status: int) -> str:
    """The RFC 9110 reason phrase of ``status`` (``"Error"`` for an unknown one):
    the ``title`` of an ``about:blank`` problem, as RFC 9457 §4.2.1 asks."""
    try:
        return _RFC9110_PHRASES.get(status) or HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# One encoder for every problem document (json.dumps with ``cls`` makes one
# per call); it keeps no state between calls.
_encode_document = DjangoJSONEncoder(ensure_ascii=False).encode


class ProblemResponse(HttpResponse):
    """A problem document rendered as JSON; ``data`` keeps the document."""

    def __init__(
        self,
        document: ProblemDocument,
        *,
        content_type: str = PROBLEM_JSON,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = _encode_document(document)
        super().__init__(
            body.encode(),
            status=document["status"],
            content_type=content_type,
            headers=headers,
        )
        self.data = document


def problem_content_type(request: HttpRequest | None) -> str:
    """``application/problem+json``, or ``application/json`` for a client whose
    ``Accept`` allows only that (the body is the same)."""
    if request is None:
        return PROBLEM_JSON
    # Read from META, as HttpRequest.accepted_types does through the headers
    # mapping, which would be built for this one header.
    return _content_type_for(request.META.get("HTTP_ACCEPT", "*/*"))


@lru_cache(maxsize=128)
def _content_type_for(accept: str) -> str:
    """The problem's content type for an ``Accept`` value: clients send a few
    distinct ones, each parsed once (at most 128 are kept)."""
    # Media type parameters (charset) do not matter here; q=0 types are gone,
    # as from HttpRequest.accepted_types.
    accepted = {
        (media_type.main_type, media_type.sub_type)
        for token in accept.split(",")
        if token.strip() and (media_type := MediaType(token)).quality != 0
    }
    if ("application", "json") in accepted and accepted.isdisjoint(_PROBLEM_RANGES):
        return JSON
    return PROBLEM_JSON


def prefers_html(request: HttpRequest) -> bool:
    """Whether Django's own HTML error page should answer this client: a client
    preferring HTML, with ``MICROKIT["ERRORS"]["HTML_FALLBACK"]`` or under
    ``DEBUG`` (where the page is Django's technical one, for the developer's
    browser); every other client gets the problem."""
    return bool(microkit_settings.ERRORS["HTML_FALLBACK"] or settings.DEBUG) and (
        request.get_preferred_type([PROBLEM_JSON, JSON, "text/html"]) == "text/html"
    )


class ExceptionHandler:
    """Turns an exception into a problem response.

    ``context`` is DRF's exception-handler context (``request``, ``view``,
    ``args``, ``kwargs``); outside DRF, ``request`` is the Django request and
    ``view`` is ``None``. Override a step to change one thing, and name the
    subclass in ``MICROKIT["ERRORS"]["HANDLER_CLASS"]``.
    """

    #: Titles of the built-in codes, used once ``TYPE_BASE_URI`` gives each code
    #: its own type. With ``about:blank`` the title is the HTTP reason phrase, as
    #: RFC 9457 §4.2.1 asks.
    titles: ClassVar[Mapping[str, Any]] = {
        "authentication_failed": _("Authentication failed."),
        "bad_request": _("Bad request."),
        "csrf_failed": _("CSRF verification failed."),
        "method_not_allowed": _("Method not allowed."),
        "not_acceptable": _("Not acceptable."),
        "not_authenticated": _("Authentication required."),
        "not_found": _("Not found."),
        "parse_error": _("Malformed request."),
        "permission_denied": _("Permission denied."),
        "request_too_large": _("Request too large."),
        "server_error": _("Server error."),
        "service_unavailable": _("Service unavailable."),
        "throttled": _("Too many requests."),
        "unsupported_media_type": _("Unsupported media type."),
        "validation_error": _("Invalid input."),
    }

    def __init__(self, exc: Exception, context: Mapping[str, Any]) -> None:
        self.exc = exc
        self.context = context

    @cached_property
    def request(self) -> HttpRequest | None:
        """The Django request (DRF's ``Request`` wraps it)."""
        request = self.context.get("request")
        return getattr(request, "_request", request)

    @property
    def view(self) -> Any:
        return self.context.get("view")

    def run(self) -> HttpResponse:
        """Every step: the response DRF (or the middleware) returns."""
        response = self.get_response(self.get_problem(self.exc))
        self.set_rollback()
        self.report_exception(self.exc, response)
        return response

    # -- from exception to Problem --------------------------------------------

    def get_problem(self, exc: Exception) -> Problem:
        exc = self.convert_known_exceptions(exc)
        if isinstance(exc, Problem):
            return exc
        if isinstance(exc, exceptions.ValidationError):
            return self.from_validation_error(exc)
        if isinstance(exc, exceptions.APIException):
            return self.from_api_exception(exc)
        return self.from_unhandled_exception(exc)

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        """Django's exceptions become their DRF (or ``Problem``) equivalents.

        Messages of Django's exceptions are written for developers (a 404 from
        URL resolution carries the URL patterns tried), so they are replaced by
        generic ones.
        """
        if isinstance(exc, Http404):
            return exceptions.NotFound(_NOT_FOUND_DETAIL)
        if isinstance(exc, DjangoPermissionDenied):
            return exceptions.PermissionDenied(_PERMISSION_DENIED_DETAIL)
        if isinstance(exc, DjangoValidationError):
            return exceptions.ValidationError(get_error_detail(exc))
        if isinstance(exc, (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)):
            return Problem(413, "request_too_large", detail=str(_TOO_LARGE_DETAIL))
        if isinstance(exc, MultiPartParserError):
            return exceptions.ParseError()
        if isinstance(exc, _DATABASE_UNAVAILABLE):
            return Problem(
                503,
                "service_unavailable",
                detail=str(_DATABASE_UNAVAILABLE_DETAIL),
                headers={"Retry-After": _DATABASE_RETRY_AFTER},
            )
        if isinstance(exc, (SuspiciousOperation, BadRequest)):
            return Problem(400, "bad_request", detail=str(_BAD_REQUEST_DETAIL))
        if isinstance(exc, exceptions.PermissionDenied) and str(exc.detail).startswith(
            "CSRF Failed:"
        ):
            # DRF's SessionAuthentication refusing a request without a CSRF token.
            return Problem(403, "csrf_failed", detail=str(_CSRF_DETAIL))
        if type(exc) in (exceptions.NotAuthenticated, exceptions.PermissionDenied):
            refusal = getattr(self.context.get("request"), PERMISSION_REFUSAL, None)
            return exc if refusal is None else refusal
        return exc

    def from_validation_error(self, exc: exceptions.ValidationError) -> Problem:
        """One ``errors`` item per failing field. A ``ValidationError`` subclass
        with its own ``default_code`` gives the problem its code."""
        code = type(exc).default_code
        if code == exceptions.ValidationError.default_code:
            code = "validation_error"
        return Problem.invalid(exc, in_query=self.errors_in_query(), code=code)

    def errors_in_query(self) -> bool:
        """Validation errors address query parameters (rather than the body)
        for requests that carry no body."""
        return self.request is not None and self.request.method in _BODYLESS_METHODS

    def from_api_exception(self, exc: exceptions.APIException) -> Problem:
        """A DRF exception: its code (``default_code`` or the code it was raised
        with) becomes the problem's ``code``, its detail the ``detail``."""
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else type(exc).default_code
        if code == exceptions.APIException.default_code:
            code = _CODES_BY_STATUS.get(exc.status_code, "error")
        if isinstance(exc.detail, (list, dict)):
            detail, errors = None, error_items(exc.detail, in_query=False)
        else:
            detail, errors = str(exc.detail), None
        return Problem(
            exc.status_code,
            code,
            detail=detail,
            errors=errors,
            headers=self.get_exception_headers(exc),
        )

    def get_exception_headers(self, exc: exceptions.APIException) -> dict[str, str]:
        """``WWW-Authenticate`` (401), ``Retry-After`` (429), ``Allow`` (405) and
        ``Accept`` (415: the media types the view parses, RFC 9110 §12.5.1)."""
        headers: dict[str, str] = {}
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = str(auth_header)
        wait = getattr(exc, "wait", None)
        if wait is not None:
            headers["Retry-After"] = str(math.ceil(wait))
        if isinstance(exc, exceptions.MethodNotAllowed) and self.view is not None:
            headers["Allow"] = ", ".join(self.view.allowed_methods)
        parsers = getattr(self.context.get("request"), "parsers", None)
        if isinstance(exc, exceptions.UnsupportedMediaType) and parsers:
            headers["Accept"] = ", ".join(parser.media_type for parser in parsers)
        return headers

    def from_unhandled_exception(self, exc: BaseException | None) -> Problem:
        """A generic 500: never the exception's text, except in a ``debug``
        member while ``DEBUG`` is on."""
        extensions: dict[str, Any] = {}
        if settings.DEBUG and exc is not None:
            extensions["debug"] = {
                "exception": f"{type(exc).__qualname__}: {exc}",
                "traceback": "".join(traceback.format_exception(exc)).splitlines(),
            }
        return Problem(
            500, "server_error", detail=str(_SERVER_ERROR_DETAIL), **extensions
        )

    # -- from Problem to response ---------------------------------------------

    def get_document(self, problem: Problem) -> ProblemDocument:
        document: ProblemDocument = {
            "type": self.get_type(problem),
            "title": self.get_title(problem),
            "status": problem.status_code,
            "detail": str(problem.detail),
            "code": problem.code,
        }
        if self.request is not None:
            document["instance"] = escape_uri_path(self.request.path)
        request_id = get_request_id()
        if request_id is not None:
            document["request_id"] = request_id
        if problem.errors is not None:
            document["errors"] = list(problem.errors)
        document.update(problem.extensions)  # type: ignore[typeddict-item]
        return document

    def get_type(self, problem: Problem) -> str:
        """``about:blank``, or ``TYPE_BASE_URI`` + code once that is set."""
        if problem.type is not None:
            return problem.type
        base = microkit_settings.ERRORS["TYPE_BASE_URI"]
        return f"{base}{problem.code}" if base else "about:blank"

    def get_title(self, problem: Problem) -> str:
        """Under ``about:blank``, the reason phrase (RFC 9457 §4.2.1)."""
        if problem.title is not None:
            return str(problem.title)
        if self.get_type(problem) != "about:blank":
            title = self.titles.get(problem.code)
            if title is not None:
                return str(title)
        return reason_phrase(problem.status_code)

    def get_headers(self, problem: Problem) -> dict[str, str]:
        headers = dict(problem.headers)
        if problem.status_code == 401 and "WWW-Authenticate" not in headers:
            # A Problem(401) raised in a DRF view names the view's auth scheme.
            get_header = getattr(self.view, "get_authenticate_header", None)
            drf_request = self.context.get("request")
            auth_header = get_header(drf_request) if get_header else None
            if auth_header:
                headers["WWW-Authenticate"] = auth_header
        return headers

    def get_response(self, problem: Problem) -> HttpResponse:
        response = ProblemResponse(
            self.get_document(problem),
            content_type=problem_content_type(self.request),
            headers=self.get_headers(problem),
        )
        if "Vary" in response.headers:
            patch_vary_headers(response, ("Accept",))
        else:  # what patch_vary_headers would write, without parsing
            response.headers["Vary"] = "Accept"
        return response

    # -- side effects -----------------------------------------------------------

    def set_rollback(self) -> None:
        """Roll back the request's transaction (``ATOMIC_REQUESTS``): the view's
        exception was caught before it could leave the atomic block."""
        # Imported here: rest_framework.views imports the authentication
        # classes, which may be django-microkit's own.
        from rest_framework.views import set_rollback

        set_rollback()

    def report_exception(self, exc: Exception, response: HttpResponse) -> None:
        """Report what Django would have reported had the exception reached it:
        a suspicious operation to ``django.security.*``, an unexpected exception
        to ``django.request`` with its traceback and to ``got_request_exception``
        (which error trackers such as Sentry listen to). Each once. A database
        outage answers 503 but is reported the same way: an operator must
        see it."""
        request = self.request
        if isinstance(exc, SuspiciousOperation):
            log_response(
                str(exc),
                exception=exc,
                request=request,
                response=response,
                level="error",
                logger=logging.getLogger(f"django.security.{type(exc).__name__}"),
            )
        elif response.status_code >= 500 and (
            isinstance(exc, _DATABASE_UNAVAILABLE)
            or not isinstance(
                self.convert_known_exceptions(exc), exceptions.APIException
            )
        ):
            got_request_exception.send(sender=None, request=request)
            log_response(
                "%s: %s",
                response.reason_phrase,
                request.path if request is not None else "",
                response=response,
                request=request,
                exception=exc,
            )


@derived
def get_handler_class() -> type[ExceptionHandler]:
    """The class named by ``MICROKIT["ERRORS"]["HANDLER_CLASS"]`` (imported once)."""
    handler_class: type[ExceptionHandler] = import_string(
        microkit_settings.ERRORS["HANDLER_CLASS"]
    )
    return handler_class


def get_handler(exc: Exception, request: HttpRequest) -> ExceptionHandler:
    """The configured handler for an exception met outside a DRF view, as the
    error views and :class:`~django_microkit.errors.ProblemMiddleware` use it."""
    return get_handler_class()(exc, {"request": request, "view": None})


def exception_handler(
    exc: Exception, context: Mapping[str, Any]
) -> HttpResponse | None:
    """DRF's ``EXCEPTION_HANDLER``: every exception a view raises becomes a
    problem response (an unexpected one, a generic 500). Under ``DEBUG`` a
    browser (:func:`prefers_html`) sees an unexpected one on Django's technical
    page, as in a plain view: ``None`` has DRF re-raise it."""
    handler = get_handler_class()(exc, context)
    if (
        settings.DEBUG
        and handler.request is not None
        and prefers_html(handler.request)
        and not isinstance(
            handler.convert_known_exceptions(exc), exceptions.APIException
        )
    ):
        return None
    return handler.run()
