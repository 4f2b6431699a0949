"""The exceptions a service call raises.

A caller branches on the class (``except NotFoundError``), never on a status
code or a parsed body: a problem-details answer (RFC 9457) becomes an exception
carrying its ``status``, ``code``, ``title``, ``detail``, ``errors`` and the
remote ``request_id``; an answer that is not a problem (an HTML page from a
proxy, plain text) still gives the status and the start of the body; a call
that got no answer at all (timeout, refused connection, open circuit) has no
status and a fixed ``code``.

Every class here derives from :class:`ServiceError`, and everything that means
"the other service cannot serve this right now" derives from
:class:`ServiceUnavailableError`, which a view typically answers with a 503.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, cast

import requests

from django_microkit.conf import DEFAULTS, Option, microkit_settings
from django_microkit.request_id import is_valid_request_id

__all__ = [
    "CircuitOpenError",
    "ClientError",
    "ConflictError",
    "InvalidResponseError",
    "NotFoundError",
    "ServiceConnectionError",
    "ServiceError",
    "ServiceTimeoutError",
    "ServiceUnavailableError",
    "TEXT_LIMIT",
    "error_from_response",
    "parse_retry_after",
]

#: At most this many characters of a non-problem body are kept on the exception.
TEXT_LIMIT = 500
# Longest title/detail/code kept from a remote problem (they end up in logs).
_MEMBER_LIMIT = 1000
_PROBLEM_TYPES = ("application/problem+json", "application/json")
_RETRY_AFTER_CAP = cast("dict[str, Option]", DEFAULTS["CLIENT"])["RETRY_AFTER_CAP"]
# RFC 9110 §5.6.7: IMF-fixdate (also with RFC 5322's "-0000" for GMT), and the
# obsolete RFC 850 and asctime forms; ASCII digits only (re.ASCII).
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]
_MONTHS += ["Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_MONTH = "|".join(_MONTHS)
_TIME = r"(?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)"
_HTTP_DATES = [
    re.compile(pattern, re.ASCII)
    for pattern in (
        rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (?P<d>\d\d) (?P<m>{_MONTH}) "
        rf"(?P<y>\d{{4}}) {_TIME} (?:GMT|[+-]0000)",
        rf"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, (?P<d>\d\d)-(?P<m>{_MONTH})-"
        rf"(?P<y>\d\d) {_TIME} GMT",
        rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<m>{_MONTH}) (?P<d>[ \d]\d) {_TIME} "
        rf"(?P<y>\d{{4}})",
    )
]


class ServiceError(Exception):
    """A call to another service failed.

    ``status`` is the HTTP status of the answer (``None`` when there was no
    answer), ``code`` the remote problem's ``code`` (or a fixed code for
    failures without an answer), ``problem`` the whole problem document when the
    answer was one, ``text`` the start of the body when it was not.
    """

    #: ``code`` when the failure carries none of its own.
    default_code: str | None = None

    def __init__(
        self,
        service: str,
        method: str = "",
        path: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
        problem: dict[str, Any] | None = None,
        text: str = "",
        retry_after: float | None = None,
        response: requests.Response | None = None,
    ) -> None:
        self.service = service
        self.method = method
        self.path = path
        self.status = status
        self.code = code if code is not None else self.default_code
        self.title = title
        self.detail = detail
        self.errors: list[dict[str, Any]] = errors or []
        self.request_id = request_id
        self.problem = problem
        self.text = text
        #: Seconds the remote asked to wait (``Retry-After``), when it said so.
        self.retry_after = retry_after
        self.response = response
        super().__init__(self._message())

    def with_cause(self, cause: BaseException) -> ServiceError:
        """This error, raised ``from cause``."""
        self.__cause__ = cause
        return self

    def _message(self) -> str:
        where = " ".join(
            part for part in (self.service, self.method, self.path) if part
        )
        head = " ".join(
            str(part) for part in (self.status, self.code) if part is not None and part
        )
        message = f"{where}: {head or 'failed'}"
        explanation = self.detail or self.title or self.text
        return f"{message} ({explanation})" if explanation else message


class ClientError(ServiceError):
    """The other service refused the request (4xx): retrying will not help."""


class NotFoundError(ClientError):
    """404: what was asked for does not exist."""


class ConflictError(ClientError):
    """409: the request conflicts with the current state of the resource."""


class ServiceUnavailableError(ServiceError):
    """The other service cannot serve the request now: a 5xx answer, no answer
    in time, no connection, or an open circuit. Usually answered with a 503."""


class ServiceTimeoutError(ServiceUnavailableError):
    """No answer within the timeout, or the call's deadline ran out."""

    default_code = "timeout"


class ServiceConnectionError(ServiceUnavailableError):
    """The connection could not be made or broke before an answer came."""

    default_code = "connection_error"


class CircuitOpenError(ServiceUnavailableError):
    """The circuit breaker of the service is open: the call was not sent.

    ``retry_after`` says how long until the breaker lets a trial call through.
    """

    default_code = "circuit_open"


class InvalidResponseError(ServiceUnavailableError):
    """The answer could not be used: a success whose body is not JSON (or is
    nested too deep to parse), a body longer than the configured limit
    (``response_too_large``), a redirect not followed (``redirect``), or a
    pagination link that leaves the service's base URL.

    A service answering so cannot serve the request either: a caller's
    ``except ServiceUnavailableError`` (a 503) covers it, as a gateway answers
    502 for an invalid upstream answer (RFC 9110 §15.6.3).
    """

    default_code = "invalid_response"


def _error_class(status: int) -> type[ServiceError]:
    """The class for an error status (>= 400)."""
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    return ClientError if status < 500 else ServiceUnavailableError


def _truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _member(problem: Mapping[str, Any], name: str) -> str | None:
    value = problem.get(name)
    return _truncate(value, _MEMBER_LIMIT) if isinstance(value, str) else None


def _safe_request_id(value: Any) -> str | None:
    return value if isinstance(value, str) and is_valid_request_id(value) else None


def parse_retry_after(
    value: str | None,
    now: datetime | None = None,
    *,
    cap: float = _RETRY_AFTER_CAP.default,
) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 9110 §10.2.3): ASCII
    digits (``delay-seconds``) or an HTTP-date. ``None`` if absent or malformed;
    never negative, and never more than ``cap`` (``RETRY_AFTER_CAP``), so that a
    peer's "wait forever" stays a number a caller can pass on."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():
        # int() refuses thousands of digits; anything past 12 is past any cap.
        digits = value.lstrip("0") or "0"
        return min(cap, float(digits)) if len(digits) <= 12 else cap
    when = _http_date(value)
    if when is None:
        return None
    now = now or datetime.now(timezone.utc)
    return min(cap, max(0.0, (when - now).total_seconds()))


def _http_date(value: str) -> datetime | None:
    for pattern in _HTTP_DATES:
        match = pattern.fullmatch(value)
        if match is not None:
            break
    else:
        return None
    year = int(match["y"])
    if year < 100:  # RFC 9110 §5.6.7: never more than 50 years ahead
        year += 2000 if year + 2000 <= datetime.now(timezone.utc).year + 50 else 1900
    try:
        return datetime(
            year,
            _MONTHS.index(match["m"]) + 1,
            int(match["d"]),
            int(match["H"]),
            int(match["M"]),
            int(match["S"]),
            tzinfo=timezone.utc,
        )
    except ValueError:  # 31 Feb, 25:00:00
        return None


def error_from_response(
    service: str,
    method: str,
    path: str,
    response: requests.Response,
    request_id_header: str | None = None,
    *,
    retry_after_cap: float = _RETRY_AFTER_CAP.default,
) -> ServiceError:
    """The typed exception for an error answer (status >= 400); the remote's
    request ID is read from ``request_id_header``, by default the configured
    ``MICROKIT["REQUEST_ID"]["HEADER"]``; ``retry_after`` is at most
    ``retry_after_cap`` seconds."""
    status = response.status_code
    problem = _problem_body(response)
    header = request_id_header or microkit_settings.REQUEST_ID["HEADER"]
    request_id = _safe_request_id(response.headers.get(header))
    common: dict[str, Any] = {
        "status": status,
        "retry_after": parse_retry_after(
            response.headers.get("Retry-After"), cap=retry_after_cap
        ),
        "response": response,
    }
    cls = _error_class(status)
    if problem is None:
        text = response.text if response.content else ""
        return cls(
            service,
            method,
            path,
            text=_truncate(" ".join(text.split()), TEXT_LIMIT),
            request_id=request_id,
            **common,
        )
    errors = problem.get("errors")
    return cls(
        service,
        method,
        path,
        code=_member(problem, "code"),
        title=_member(problem, "title"),
        detail=_member(problem, "detail"),
        errors=[e for e in errors if isinstance(e, dict)]
        if isinstance(errors, list)
        else None,
        request_id=_safe_request_id(problem.get("request_id")) or request_id,
        problem=problem,
        **common,
    )


def _problem_body(response: requests.Response) -> dict[str, Any] | None:
    content_type = response.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip().lower() not in _PROBLEM_TYPES:
        return None
    try:
        body = response.json()
    except (ValueError, RecursionError):  # RecursionError: [[[[... nested deep
        return None
    return body if isinstance(body, dict) else None
