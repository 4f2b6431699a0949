"""Paging by keyset: opaque, signed cursors that seek on the ordering.

A page is read with a predicate on the whole ordering tuple (the primary key
appended when the ordering is not unique), so rows inserted or deleted between
requests never shift a page, and no ``COUNT(*)`` ever runs. A cursor is signed
with the service's ``SECRET_KEY`` together with a digest of the path, the
ordering and the other query parameters: a modified cursor, or one reused with
other filters, is a 400 problem rather than a wrong page. A signature proves
only who made a cursor (a development key may be public), so every value in it
is also checked against its ordering field before it reaches SQL.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import (
    FieldDoesNotExist,
    ImproperlyConfigured,
    ValidationError,
)
from django.db import DataError
from django.db.models import DateTimeField, F, Field, Model, Q, QuerySet
from django.db.models.expressions import OrderBy
from django.utils import timezone
from rest_framework.request import Request

from django_microkit.errors.problem import Problem
from django_microkit.pagination.base import (
    BasePagination,
    invalid_pagination,
    openapi_query_parameter,
    page_url,
    single_query_param,
)

if TYPE_CHECKING:
    from rest_framework.views import APIView

__all__ = ["CursorPagination"]

_CURSOR_SALT = "django_microkit.pagination.cursor"
_CURSOR_FORMAT = 1
_INVALID_CURSOR = "The cursor is not valid: use the links as given."
#: The longest duration every database stores: Django keeps a ``DurationField``
#: as a signed 64-bit count of microseconds where there is no interval type.
_LONGEST = datetime.timedelta(microseconds=2**63 - 1)


@dataclass(frozen=True)
class _Term:
    """One ordering term: a field path (``__`` lookups allowed) and a direction."""

    path: str
    descending: bool
    nullable: bool
    alias: str

    def order_by(self, reverse: bool) -> OrderBy:
        descending = self.descending != reverse
        # NULL sorts as the largest value on every database: last going up,
        # first going down, as PostgreSQL does by default.
        if descending:
            return F(self.alias).desc(nulls_first=True if self.nullable else None)
        return F(self.alias).asc(nulls_last=True if self.nullable else None)

    def after(self, value: Any, reverse: bool) -> Q | None:
        """Rows strictly after ``value`` in this term's order, ``None`` for none."""
        descending = self.descending != reverse
        if value is None:
            return Q(**{f"{self.alias}__isnull": False}) if descending else None
        if descending:
            return Q(**{f"{self.alias}__lt": value})
        after = Q(**{f"{self.alias}__gt": value})
        return after | Q(**{f"{self.alias}__isnull": True}) if self.nullable else after

    def from_(self, value: Any, reverse: bool) -> Q | None:
        """Rows at or after ``value``; ``None`` when that is every row."""
        descending = self.descending != reverse
        if value is None:
            return None if descending else self.equal(None)
        if descending:
            return Q(**{f"{self.alias}__lte": value})
        start = Q(**{f"{self.alias}__gte": value})
        return start | Q(**{f"{self.alias}__isnull": True}) if self.nullable else start

    def equal(self, value: Any) -> Q:
        if value is None:
            return Q(**{f"{self.alias}__isnull": True})
        return Q(**{self.alias: value})


@dataclass(frozen=True)
class _Cursor:
    position: tuple[Any, ...]
    reverse: bool
    inclusive: bool = False


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"d": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"t": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    if isinstance(value, datetime.timedelta):
        return {"td": [value.days, value.seconds, value.microseconds]}
    raise ImproperlyConfigured(
        f"Cursor pagination cannot order on a value of type {type(value).__name__}."
    )


_DECODERS: dict[str, Any] = {
    "dt": datetime.datetime.fromisoformat,
    "d": datetime.date.fromisoformat,
    "t": datetime.time.fromisoformat,
    "n": Decimal,
    "u": uuid.UUID,
    "td": lambda parts: datetime.timedelta(*parts),
}


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        ((tag, raw),) = value.items()
        # Every tag but "td" wraps a string: anything else is forged.
        if (tag == "td") is isinstance(raw, str):
            raise ValueError("not a cursor value")
        return _DECODERS[tag](raw)
    if isinstance(value, list):
        raise ValueError("not a cursor value")
    return value


def _checked_value(value: Any, field: Field[Any, Any], nullable: bool) -> Any:
    """``value`` if it is one ``field`` can hold, else ``ValueError`` (or the
    ``ValidationError`` of ``field.to_python()``).

    The value must come back from ``to_python()`` unchanged, of the same type,
    so a string where an integer belongs, or a date where a datetime does, is
    refused rather than converted: a cursor this paginator issued holds the
    column's own values.
    """
    if value is None:
        if nullable:
            return None
        # No row holds NULL there, and the seek predicate would have no branch.
        raise ValueError("NULL in a column without NULL")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a finite number")
    limit = field.max_length
    if isinstance(value, str) and limit is not None and len(value) > limit:
        raise ValueError("longer than the column")
    if isinstance(value, datetime.timedelta) and not -_LONGEST <= value <= _LONGEST:
        raise ValueError("longer than a database stores")
    if isinstance(value, datetime.time) and value.tzinfo is not None:
        # Django stores and reads times naive; SQLite and MySQL refuse an
        # aware one with a ValueError.
        raise ValueError("an aware time")
    if isinstance(field, DateTimeField) and not (
        isinstance(value, datetime.datetime)
        and timezone.is_aware(value) == settings.USE_TZ
    ):
        # to_python() would take a date, or the database a datetime of the
        # wrong awareness, with a warning or an error instead of a refusal.
        raise ValueError("not a datetime of this service")
    python = field.to_python(value)
    if type(python) is not type(value) or python != value:  # NaN != NaN too
        raise ValueError("not a value of the column")
    return value


class CursorPagination(BasePagination):
    """Opaque cursors that seek on the ordering: ``?cursor=`` and ``?page_size=``.

    ``GET /events/?page_size=50`` answers::

        HTTP/1.1 200 OK
        Link: <https://api.example.com/events/?page_size=50&cursor=…>; rel="next"

        {"results": [...], "next": "https://…?page_size=50&cursor=…",
         "previous": null}

    Pages are read with a keyset predicate on the whole ordering tuple, so rows
    inserted or deleted between requests never shift a page: every row present
    for the whole walk is seen exactly once. There is no ``count``.

    The ordering is the queryset's own ``order_by()`` (for example from DRF's
    ``OrderingFilter``), else :attr:`ordering`, else the model's
    ``Meta.ordering``, else the primary key. Unless a term is a unique,
    non-null field the primary key is appended so that the order is total.
    ``NULL`` sorts as the largest value on every database.

    A cursor is signed (``django.core.signing``, with the service's
    ``SECRET_KEY``) together with a digest of the path, the ordering and the
    other query parameters; a modified cursor, one sent with different
    filters, or one holding a value its ordering field cannot hold (anyone
    with the key can sign one) is a 400 ``invalid_pagination`` problem.
    """

    cursor_query_param = "cursor"
    #: Ordering used when the queryset has none: a field path or a sequence.
    ordering: str | Sequence[str] | None = None
    schema_component_prefix = "CursorPaginated"
    problem_statuses = (400,)

    def paginate_queryset(
        self,
        queryset: QuerySet[Any] | Sequence[Any],
        request: Request,
        view: APIView | None = None,
    ) -> list[Any]:
        if not isinstance(queryset, QuerySet):
            raise ImproperlyConfigured("CursorPagination pages querysets only.")
        self.request = request
        size = self.get_page_size(request)
        terms = self._terms(queryset)
        annotated = queryset.annotate(**{t.alias: F(t.path) for t in terms})
        # The field of each term's values, transforms (``published__year``) and
        # annotations included.
        fields = [annotated.query.annotations[t.alias].output_field for t in terms]
        digest = self._digest(request, terms)
        cursor = self._read_cursor(request, digest, terms, fields)

        if cursor is not None and cursor.reverse:
            rows = self._fetch(annotated, terms, cursor, size)
            if rows:
                has_more = len(rows) > size
                rows = rows[:size][::-1]
                self._previous = (
                    self._link(terms, rows[0], True, digest) if has_more else None
                )
                self._next = self._link(terms, rows[-1], False, digest)
                return rows
            # Nothing before the cursor any more: this is the first page.
            cursor = None

        rows = self._fetch(annotated, terms, cursor, size)
        has_more = len(rows) > size
        rows = rows[:size]
        self._next = self._link(terms, rows[-1], False, digest) if has_more else None
        if cursor is None:
            self._previous = None
        elif rows:
            self._previous = self._link(terms, rows[0], True, digest)
        else:
            self._previous = self._encode_link(
                _Cursor(cursor.position, reverse=True, inclusive=True), digest
            )
        return rows

    # ordering

    def get_ordering(self, queryset: QuerySet[Any]) -> list[Any]:
        """The ordering to page by, before the primary-key tiebreak is added:
        field paths (``"-created"``, ``"author__name"``) or ``F``/``OrderBy``
        expressions of field paths."""
        if queryset.query.order_by:
            return list(queryset.query.order_by)
        if self.ordering:
            return (
                [self.ordering]
                if isinstance(self.ordering, str)
                else list(self.ordering)
            )
        meta_ordering = queryset.model._meta.ordering
        if meta_ordering and queryset.query.default_ordering:
            return list(meta_ordering)
        return ["pk"]

    def _terms(self, queryset: QuerySet[Any]) -> list[_Term]:
        model = queryset.model
        terms: list[_Term] = []
        seen: set[str] = set()
        unique = False
        for item in self.get_ordering(queryset):
            path, descending = _parse_ordering_item(item)
            path = model._meta.pk.name if path == "pk" else path
            if path in seen:
                continue
            seen.add(path)
            nullable, is_unique = _inspect_path(model, path)
            unique = unique or is_unique
            terms.append(
                _Term(path, descending, nullable, f"_microkit_cursor_{len(terms)}")
            )
        if not unique:
            descending = terms[-1].descending if terms else False
            terms.append(
                _Term(
                    model._meta.pk.name,
                    descending,
                    False,
                    f"_microkit_cursor_{len(terms)}",
                )
            )
        return terms

    # reading

    def _fetch(
        self,
        queryset: QuerySet[Any],
        terms: list[_Term],
        cursor: _Cursor | None,
        size: int,
    ) -> list[Any]:
        reverse = cursor is not None and cursor.reverse
        if cursor is not None:
            queryset = queryset.filter(_seek_predicate(terms, cursor))
        rows = queryset.order_by(*(t.order_by(reverse) for t in terms))[: size + 1]
        if cursor is None:
            return list(rows)
        try:
            return list(rows)
        except (DataError, UnicodeEncodeError, OverflowError, ValueError):
            # A value the database cannot compare with the column, past the
            # checks of _checked_value: a lone surrogate (no UTF-8), a NUL
            # character in PostgreSQL text, a number or time its driver refuses.
            raise _invalid_cursor(self.cursor_query_param) from None

    # cursors

    def _digest(self, request: Request, terms: list[_Term]) -> str:
        """Binds a cursor to this path, ordering and the other query parameters."""
        ignored = {self.cursor_query_param, self.page_size_query_param}
        params = sorted(
            (key, sorted(values))
            for key, values in request.query_params.lists()
            if key not in ignored
        )
        ordering = [(t.path, t.descending) for t in terms]
        material = repr((request.path, ordering, params)).encode()
        return hashlib.sha256(material).hexdigest()[:32]

    def _read_cursor(
        self,
        request: Request,
        digest: str,
        terms: list[_Term],
        fields: list[Field[Any, Any]],
    ) -> _Cursor | None:
        name = self.cursor_query_param
        token = single_query_param(request, name)
        if token is None:
            return None
        try:
            payload = signing.loads(token, salt=_CURSOR_SALT)
            if payload["v"] != _CURSOR_FORMAT:
                raise ValueError("unknown cursor format")
            position = [_decode_value(value) for value in payload["p"]]
            reverse, inclusive = bool(payload["r"]), bool(payload.get("i"))
            if payload["h"] != digest or len(position) != len(terms):
                raise invalid_pagination(
                    name,
                    "The cursor belongs to another list: the path, ordering or "
                    "filters have changed since it was issued.",
                    "cursor_mismatch",
                )
            checked = zip(position, fields, terms, strict=True)
            return _Cursor(
                tuple(_checked_value(v, f, t.nullable) for v, f, t in checked),
                reverse,
                inclusive,
            )
        except (
            signing.BadSignature,
            ValidationError,
            KeyError,
            TypeError,
            ValueError,
            ArithmeticError,
        ):
            raise _invalid_cursor(name) from None

    def _link(self, terms: list[_Term], row: Any, reverse: bool, digest: str) -> str:
        get = row.__getitem__ if isinstance(row, dict) else row.__getattribute__
        position = tuple(get(t.alias) for t in terms)
        return self._encode_link(_Cursor(position, reverse), digest)

    def _encode_link(self, cursor: _Cursor, digest: str) -> str:
        payload: dict[str, Any] = {
            "v": _CURSOR_FORMAT,
            "p": [_encode_value(value) for value in cursor.position],
            "r": int(cursor.reverse),
            "h": digest,
        }
        if cursor.inclusive:
            payload["i"] = 1
        token = signing.dumps(payload, salt=_CURSOR_SALT, compress=True)
        assert self.request is not None
        return page_url(self.request, {self.cursor_query_param: token})

    # schema

    def _example_link(self, rel: str) -> str:
        return (
            f"https://api.example.com/items/?{self.cursor_query_param}=eyJ2IjoxfQ:1tX"
        )

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            openapi_query_parameter(
                self.cursor_query_param,
                "Opaque position from a `next` or `previous` link; no other "
                "value is valid.",
                # The characters of a signed token (django.core.signing). The
                # format says what no pattern can: only a link's value is valid.
                {
                    "type": "string",
                    "format": "cursor",
                    "minLength": 1,
                    "pattern": "^[A-Za-z0-9_.:-]+$",
                },
            ),
            self._page_size_parameter(),
        ]


def _invalid_cursor(parameter: str) -> Problem:
    return invalid_pagination(parameter, _INVALID_CURSOR, "invalid_cursor")


def _parse_ordering_item(item: Any) -> tuple[str, bool]:
    if isinstance(item, str):
        if item.startswith("?"):
            raise ImproperlyConfigured("Cursor pagination cannot page a random order.")
        return (item[1:], True) if item.startswith("-") else (item.lstrip("+"), False)
    if isinstance(item, OrderBy) and isinstance(item.expression, F):
        return _field_name(item.expression), item.descending
    if isinstance(item, F):
        return _field_name(item), False
    raise ImproperlyConfigured(
        f"Cursor pagination orders by field paths only, not {item!r}."
    )


def _field_name(expression: F) -> str:
    _, args, _ = expression.deconstruct()
    return str(args[0])


def _inspect_path(model: type[Model], path: str) -> tuple[bool, bool]:
    """Whether ``path`` can be NULL, and whether it alone identifies a row.

    A path through a relation may be NULL where any link may be; a path the
    model does not know (an annotation, a transform) is taken as nullable.
    Ordering across a to-many relation repeats rows and is refused.
    """
    opts = model._meta
    nullable = False
    parts = path.split("__")
    for index, part in enumerate(parts):
        try:
            field = opts.pk if part == "pk" else opts.get_field(part)
        except FieldDoesNotExist:
            return True, False
        if field.many_to_many or field.one_to_many:
            raise ImproperlyConfigured(
                f"Cursor pagination cannot order by {path!r}: it crosses a to-many "
                "relation and would repeat rows."
            )
        null = bool(getattr(field, "null", True))
        nullable = nullable or null
        related = field.related_model if field.is_relation else None
        if (
            isinstance(related, type)
            and issubclass(related, Model)
            and index < len(parts) - 1
        ):
            opts = related._meta
            continue
        unique = len(parts) == 1 and bool(getattr(field, "unique", False)) and not null
        return nullable, unique
    return nullable, False  # pragma: no cover - the loop always returns


def _seek_predicate(terms: list[_Term], cursor: _Cursor) -> Q:
    """Rows after (or before, when reversed) ``cursor.position`` in the ordering.

    For terms t1..tn at position v1..vn: OR over i of
    (t1 = v1 AND … AND t(i-1) = v(i-1) AND ti after vi). With more than one
    term, the first term's bound (t1 >= v1) is repeated on its own so that an
    index on it can limit the scan.
    """
    branches: list[Q] = []
    equal = Q()
    for term, value in zip(terms, cursor.position, strict=True):
        after = term.after(value, cursor.reverse)
        if after is not None:
            branches.append(equal & after)
        equal &= term.equal(value)
    if cursor.inclusive:
        branches.append(equal)
    # One term is unique and non-null, so never NULL in a cursor: a branch.
    assert branches
    predicate = branches[0]
    for branch in branches[1:]:
        predicate |= branch
    bound = terms[0].from_(cursor.position[0], cursor.reverse)
    return predicate if bound is None or len(terms) == 1 else bound & predicate
