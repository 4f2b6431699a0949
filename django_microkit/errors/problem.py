"""The problem document (RFC 9457) and :class:`Problem`, the exception a service
raises for its own errors, so that no code ever builds an error dict by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypedDict

from django.utils.translation import gettext_lazy as _
from rest_framework import status as http_status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.settings import api_settings

from django_microkit.conf import microkit_settings

__all__ = ["ErrorItem", "Problem", "ProblemDocument", "error_items", "json_pointer"]


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
    ``headers`` are sent with the response (for example ``Retry-After``);
    ``type`` replaces the type URI that would otherwise be derived from the code.

    ``title`` describes the problem type, so it needs a type URI: ``type``, or
    the one ``MICROKIT["ERRORS"]["TYPE_BASE_URI"]`` derives from the code. Under
    ``about:blank`` the title is the HTTP reason phrase (RFC 9457 §4.2.1), and
    a title of one's own is a ``ValueError`` here, where the developer meets it
    at once, rather than a document that says two things: text about this
    occurrence belongs in ``detail``.
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
        type: str | None = None,
        **extensions: Any,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"A problem needs an error status, not {status}.")
        reserved = _RESERVED_MEMBERS.intersection(extensions)
        if reserved:
            raise ValueError(
                f"{sorted(reserved)} are set by the handler, not by a problem."
            )
        # Under about:blank, as ExceptionHandler.get_type derives the type.
        if title is not None and (
            type == "about:blank"
            or (type is None and not microkit_settings.ERRORS["TYPE_BASE_URI"])
        ):
            raise ValueError(
                f"A problem of type about:blank is titled with the HTTP reason "
                f"phrase: give the title {title!r} a type URI (type=, or "
                f"MICROKIT['ERRORS']['TYPE_BASE_URI']), or put it in detail."
            )
        super().__init__(detail=detail, code=code)
        self.status_code = status
        self.code = code
        self.title = title
        self.errors = errors
        self.headers = dict(headers or {})
        self.type = type
        self.extensions = extensions

    @classmethod
    def invalid(
        cls,
        errors: ValidationError | Mapping[Any, Any] | Sequence[Any],
        *,
        in_query: bool = False,
        status: int = http_status.HTTP_400_BAD_REQUEST,
        code: str = "validation_error",
        title: str | None = None,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> Problem:
        """A validation problem from DRF errors, with extension members.

        ``raise Problem.invalid(serializer.errors, balance=account.balance)``
        answers 400 ``validation_error`` with one ``errors`` item per failing
        field (addressed by JSON pointer, or by query parameter name when
        ``in_query``) and a ``balance`` member.
        """
        detail_tree = errors.detail if isinstance(errors, ValidationError) else errors
        return cls(
            status,
            code,
            title=title,
            detail=str(_QUERY_DETAIL if in_query else _BODY_DETAIL)
            if detail is None
            else detail,
            errors=error_items(detail_tree, in_query=in_query),
            headers=headers,
            **extensions,
        )


_BODY_DETAIL = _("The request body did not pass validation.")
_QUERY_DETAIL = _("The query parameters did not pass validation.")

#: Members the handler fills in from the request; a problem cannot set them.
_RESERVED_MEMBERS = frozenset({"instance", "request_id"})

#: Keys DRF and Django use for errors about the object as a whole.
_NON_FIELD_KEYS = frozenset({"__all__"})


def error_items(detail: Any, *, in_query: bool = False) -> list[ErrorItem]:
    """Flatten DRF validation errors (``serializer.errors``, a
    ``ValidationError.detail``) into problem ``errors`` items.

    Body errors are addressed with a JSON Pointer (RFC 6901): nested
    serializers and list items become path segments (``/items/0/sku``), and
    non-field errors carry no pointer. With ``in_query`` the top-level name
    becomes the ``parameter`` of the item instead.
    """
    non_field_keys = _NON_FIELD_KEYS | {api_settings.NON_FIELD_ERRORS_KEY}
    items: list[ErrorItem] = []
    for path, message in _walk(detail, (), non_field_keys):
        item: ErrorItem = {
            "code": str(getattr(message, "code", None) or "invalid"),
            "detail": str(message),
        }
        if path and in_query:
            item["parameter"] = path[0]
        elif path:
            item["pointer"] = json_pointer(path)
        items.append(item)
    return items


def _walk(
    detail: Any, path: tuple[str, ...], non_field_keys: frozenset[str]
) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            where = path if key in non_field_keys else (*path, str(key))
            yield from _walk(value, where, non_field_keys)
    elif isinstance(detail, (list, tuple)):
        for index, value in enumerate(detail):
            if isinstance(value, (Mapping, list, tuple)):
                # A list of objects (many=True) or of lists: one segment per item.
                yield from _walk(value, (*path, str(index)), non_field_keys)
            else:
                yield path, value
    else:
        yield path, detail


def json_pointer(path: Sequence[str]) -> str:
    """The JSON Pointer for ``path``: ``~`` and ``/`` escaped as RFC 6901 §3 says."""
    return "".join(
        "/" + segment.replace("~", "~0").replace("/", "~1") for segment in path
    )
