"""RFC 9457 problem details: the one error body every service returns.

This module defines the problem document and :class:`Problem`, the exception a
service raises for its own errors, so that no code ever builds an error dict by
hand.
"""

from __future__ import annotations

from typing import Any, TypedDict

from django.utils.translation import gettext_lazy as _
from rest_framework import status as http_status
from rest_framework.exceptions import APIException

__all__ = ["ErrorItem", "Problem", "ProblemDocument"]


class ErrorItem(TypedDict, total=False):
    """One failing input: a body field (``pointer``, RFC 6901), a query parameter
    (``parameter``) or a header (``header``); non-field errors have none of them."""

    code: str
    detail: str
    pointer: str
    parameter: str
    header: str


class _ProblemRequired(TypedDict):
    type: str
    title: str
    status: int
    code: str


class ProblemDocument(_ProblemRequired, total=False):
    """The body of every error response (``application/problem+json``).

    Extension members chosen by the service may appear beside these keys.
    """

    detail: str
    instance: str
    request_id: str
    errors: list[ErrorItem]


class Problem(APIException):
    """An error a service raises to answer with a problem document.

    ``raise Problem(409, "insufficient_stock", detail="Only 2 left.", available=2)``
    answers 409 with ``code`` ``insufficient_stock`` and an ``available`` member.
    ``title`` defaults to the HTTP reason phrase; ``headers`` are sent with the
    response (for example ``Retry-After``).
    """

    status_code: int = http_status.HTTP_400_BAD_REQUEST
    default_code = "error"
    default_detail = _("The request could not be completed.")

    def __init__(
        self,
        status: int,
        code: str,
        *,
        title: str | None = None,
        detail: str | None = None,
        errors: list[ErrorItem] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"A problem needs an error status, not {status}.")
        super().__init__(detail=detail, code=code)
        self.status_code = status
        self.code = code
        self.title = title
        self.errors = errors
        self.headers = dict(headers or {})
        self.extensions = extensions
