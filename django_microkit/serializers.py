"""Serializers that take a JSON value only of the type the schema gives it.

DRF's fields coerce what they are given, because HTML forms send nothing but
strings: ``CharField`` turns ``0`` into ``"0"``, ``IntegerField`` reads
``"12"`` and ``BooleanField`` reads ``"true"``. A JSON body says what type
each value is, and the OpenAPI schema says what type the API takes, so a JSON
API that coerces accepts requests its own schema calls invalid. With
:class:`StrictJSONMixin` a JSON value of the wrong type is a validation error
(``invalid``, in DRF's wording); form and multipart posts, whose values
are all strings, are still coerced.

::

    from django_microkit.serializers import ModelSerializer

    class ProductSerializer(ModelSerializer[Product]):
        class Meta:
            model = Product
            fields = ["id", "sku", "name", "price"]

``POST /products/`` with ``{"sku": 12, "name": "Anvil", "price": "9.90"}``
answers 400 ``validation_error`` with the item
``{"code": "invalid", "detail": "Not a valid string.", "pointer": "/sku"}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.db.models import Model
from django.http import QueryDict
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.settings import api_settings

__all__ = [
    "ModelSerializer",
    "Serializer",
    "StrictJSONMixin",
    "decimal_pattern",
    "json_type",
    "text_pattern",
]

_M = TypeVar("_M", bound=Model)
_Field = serializers.Field[Any, Any, Any, Any]

#: The refusal of a value of another JSON type, DRF's own wording for each.
_MESSAGES = {
    "boolean": "Must be a valid boolean.",
    "integer": "A valid integer is required.",
    "number": "A valid number is required.",
    "string": "Not a valid string.",
}


def json_type(field: _Field) -> str | None:
    """The JSON Schema type of the values ``field`` takes; ``None`` for any.

    A decimal takes the type it is shown as: a string, or a number where
    ``coerce_to_string`` is off.
    """
    if isinstance(field, serializers.BooleanField):
        return "boolean"
    if isinstance(field, serializers.DecimalField):
        # DRF sets the attribute only when it is given, as here.
        as_string = getattr(
            field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING
        )
        return "string" if as_string else "number"
    if isinstance(field, serializers.IntegerField):
        return "integer"
    if isinstance(field, serializers.FloatField):
        return "number"
    if isinstance(field, serializers.CharField):
        return "string"
    return None


def decimal_pattern(field: serializers.DecimalField) -> str:
    """The decimal strings ``field`` takes in JSON, as a regular expression:
    digits within ``max_digits`` and ``decimal_places``, no leading zero, a
    sign only where ``min_value`` allows a negative value. DRF's own reading
    takes more (``"1e2"``, ``" 1"``, ``"007"``); a JSON API takes what its
    schema says."""
    sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
    whole = field.max_whole_digits
    if whole is None:
        integer = "(?:0|[1-9][0-9]*)"
    else:
        integer = "0" if whole == 0 else f"(?:0|[1-9][0-9]{{0,{whole - 1}}})"
    places = field.decimal_places
    if places is None:
        fraction = r"(?:\.[0-9]+)?"
    else:
        fraction = rf"(?:\.[0-9]{{1,{places}}})?" if places else ""
    return f"^{sign}{integer}{fraction}$"


#: What ``str.strip()`` removes, which DRF's ``trim_whitespace`` applies.
_SPACE = (
    r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)


def text_pattern(field: serializers.CharField) -> str:
    """The strings ``field`` takes, as a regular expression: never a NUL
    character (DRF refuses one), and where blank is refused, a character that
    is no whitespace (DRF strips whitespace before it looks for a blank)."""
    if field.allow_blank or not field.trim_whitespace:
        return "^[^\\u0000]*$"
    return f"^[^\\u0000]*[^\\u0000{_SPACE}][^\\u0000]*$"


def _is_of_type(value: Any, expected: str) -> bool:
    # Python's bool is an int, JSON's boolean is no number; 2.0 is JSON's 2.
    if isinstance(value, bool) or expected == "boolean":
        return isinstance(value, bool) and expected == "boolean"
    if expected == "string":
        return isinstance(value, str)
    if isinstance(value, float):
        return expected == "number" or value.is_integer()
    return isinstance(value, int)


def _refusal(field: _Field, value: Any) -> tuple[str, str] | None:
    """Why ``value`` is not what the schema says ``field`` takes (message and
    code), if it is not."""
    expected = json_type(field)
    if value is None or expected is None:
        return None
    if not _is_of_type(value, expected):
        return _MESSAGES[expected], "invalid"
    if isinstance(field, serializers.DecimalField):
        pattern = decimal_pattern(field)
        if expected != "string" or re.fullmatch(pattern, value):
            return None
        if value.startswith("-") and re.fullmatch(pattern, value[1:]):
            # The pattern has no sign: min_value refuses negative numbers.
            message = field.error_messages["min_value"]
            return message.format(min_value=field.min_value), "min_value"
        return _MESSAGES["number"], "invalid"
    elif isinstance(field, serializers.CharField):
        # DRF counts the length after stripping whitespace; the schema, as sent.
        longest = field.max_length
        if longest is not None and len(value) > longest:
            message = field.error_messages["max_length"].format(max_length=longest)
            return message, "max_length"
    return None


class StrictJSONMixin:
    """Refuses a JSON value of another type than its field's.

    Mixed into a DRF serializer before it (``class S(StrictJSONMixin,
    serializers.Serializer)``); :class:`Serializer` and :class:`ModelSerializer`
    are the two made that way. Nested serializers are strict when their own
    class is. Data given as a ``QueryDict`` (form and multipart posts) is
    coerced as DRF does. ``null`` is left to ``allow_null``.
    """

    def to_internal_value(self, data: Any) -> Any:
        errors = self._json_type_errors(data)
        try:
            value = super().to_internal_value(data)  # type: ignore[misc]
        except serializers.ValidationError as exc:
            if not errors:
                raise
            detail = exc.detail
            if not isinstance(detail, Mapping):
                detail = {api_settings.NON_FIELD_ERRORS_KEY: detail}
            raise serializers.ValidationError({**detail, **errors}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def _json_type_errors(self, data: Any) -> dict[str, list[ErrorDetail]]:
        root = getattr(self, "root", self)
        if not isinstance(data, Mapping) or isinstance(
            getattr(root, "initial_data", None), QueryDict
        ):
            return {}
        errors: dict[str, list[ErrorDetail]] = {}
        fields: Iterable[_Field] = getattr(self, "_writable_fields", ())
        for field in fields:
            refusal = _refusal(field, data.get(field.field_name))
            if refusal is not None:
                errors[str(field.field_name)] = [ErrorDetail(*refusal)]
        return errors


class Serializer(StrictJSONMixin, serializers.Serializer[Any]):
    """DRF's ``Serializer``, strict about JSON types (:class:`StrictJSONMixin`)."""


class ModelSerializer(StrictJSONMixin, serializers.ModelSerializer[_M]):
    """DRF's ``ModelSerializer``, strict about JSON types (:class:`StrictJSONMixin`)."""
