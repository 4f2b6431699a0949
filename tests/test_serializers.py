from __future__ import annotations

import re
from typing import Any

import pytest
from django.http import QueryDict
from rest_framework import serializers

from django_microkit.serializers import (
    Serializer,
    StrictJSONMixin,
    decimal_pattern,
    json_type,
    text_pattern,
)


class Line(Serializer):
    quantity = serializers.IntegerField(min_value=1)


class Item(Serializer):
    name = serializers.CharField(max_length=5)
    count = serializers.IntegerField(required=False)
    weight = serializers.FloatField(required=False)
    active = serializers.BooleanField(required=False)
    price = serializers.DecimalField(
        max_digits=6, decimal_places=2, min_value=0, required=False
    )
    amount = serializers.DecimalField(
        max_digits=6, decimal_places=2, coerce_to_string=False, required=False
    )
    note = serializers.CharField(required=False, allow_null=True)
    when = serializers.DateTimeField(required=False)
    lines = Line(many=True, required=False)


def errors(data: Any) -> dict[str, Any]:
    serializer = Item(data=data)
    assert not serializer.is_valid()
    return {
        name: [(str(e), e.code) for e in found] if isinstance(found, list) else found
        for name, found in serializer.errors.items()
    }


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("name", 0, ("Not a valid string.", "invalid")),
        ("name", True, ("Not a valid string.", "invalid")),
        (
            "name",
            "a     ",
            ("Ensure this field has no more than 5 characters.", "max_length"),
        ),
        ("count", "12", ("A valid integer is required.", "invalid")),
        ("count", 1.5, ("A valid integer is required.", "invalid")),
        ("count", False, ("A valid integer is required.", "invalid")),
        ("weight", "1.0", ("A valid number is required.", "invalid")),
        ("active", "true", ("Must be a valid boolean.", "invalid")),
        ("active", 1, ("Must be a valid boolean.", "invalid")),
        ("price", 9.9, ("Not a valid string.", "invalid")),
        ("price", "1e2", ("A valid number is required.", "invalid")),
        ("price", " 1", ("A valid number is required.", "invalid")),
        ("price", "007", ("A valid number is required.", "invalid")),
        (
            "price",
            "-0",
            ("Ensure this value is greater than or equal to 0.", "min_value"),
        ),
        ("amount", "9.90", ("A valid number is required.", "invalid")),
    ],
)
def test_a_json_value_of_another_type_is_refused(
    field: str, value: Any, expected: tuple[str, str]
) -> None:
    assert errors({"name": "a", field: value}) == {field: [expected]}


@pytest.mark.parametrize(
    "data",
    [
        {"name": "pen", "count": 2.0, "weight": 1, "active": False},
        {"name": "pen", "price": "9.90", "amount": 9.9, "note": None},
        {"name": " pen ", "when": "2026-01-01T00:00:00Z", "price": "0"},
    ],
)
def test_values_of_their_json_type_are_taken(data: dict[str, Any]) -> None:
    serializer = Item(data=data)
    assert serializer.is_valid(), serializer.errors


def test_form_posts_are_still_coerced() -> None:
    form = QueryDict("name=12&count=3&active=true&price=1e1", mutable=True)
    serializer = Item(data=form)
    assert serializer.is_valid(), serializer.errors
    assert dict(serializer.validated_data) == {
        "name": "12",
        "count": 3,
        "active": True,
        "price": 10,
    }


def test_type_errors_join_the_other_errors() -> None:
    assert errors({"name": 1, "count": 0.5, "price": "-5", "when": "soon"}) == {
        "name": [("Not a valid string.", "invalid")],
        "count": [("A valid integer is required.", "invalid")],
        "price": [("Ensure this value is greater than or equal to 0.", "min_value")],
        "when": [
            (
                "Datetime has wrong format. Use one of these formats instead: "
                "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
                "invalid",
            )
        ],
    }


def test_nested_serializers_are_strict_too() -> None:
    found = errors({"name": "a", "lines": [{"quantity": 1}, {"quantity": "2"}]})
    assert found == {"lines": {1: {"quantity": ["A valid integer is required."]}}}


def test_type_errors_join_a_serializers_own_refusal() -> None:
    class Refusing(serializers.Serializer[Any]):
        size = serializers.IntegerField()

        def to_internal_value(self, data: Any) -> Any:
            raise serializers.ValidationError("Not today.")

    class Picky(StrictJSONMixin, Refusing):
        pass

    picky = Picky(data={"size": "3"})
    assert not picky.is_valid()
    assert picky.errors == {
        "non_field_errors": ["Not today."],
        "size": ["A valid integer is required."],
    }


def test_data_that_is_no_object_is_left_to_drf() -> None:
    assert errors(["name"]) == {
        "non_field_errors": [
            ("Invalid data. Expected a dictionary, but got list.", "invalid")
        ]
    }


def test_the_mixin_goes_before_a_serializer_of_ones_own() -> None:
    class Plain(serializers.Serializer[Any]):
        size = serializers.IntegerField()

    class Strict(StrictJSONMixin, Plain):
        pass

    assert Plain(data={"size": "3"}).is_valid()
    strict = Strict(data={"size": "3"})
    assert not strict.is_valid()
    assert strict.errors == {"size": ["A valid integer is required."]}


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (serializers.BooleanField(), "boolean"),
        (serializers.IntegerField(), "integer"),
        (serializers.FloatField(), "number"),
        (serializers.DecimalField(max_digits=4, decimal_places=1), "string"),
        (
            serializers.DecimalField(
                max_digits=4, decimal_places=1, coerce_to_string=False
            ),
            "number",
        ),
        (serializers.EmailField(), "string"),
        (serializers.DateField(), None),
        (serializers.ListField(), None),
    ],
)
def test_json_type(field: serializers.Field[Any, Any, Any, Any], expected: str) -> None:
    assert json_type(field) == expected


@pytest.mark.parametrize(
    ("kwargs", "pattern", "taken", "refused"),
    [
        (
            {"max_digits": 6, "decimal_places": 2, "min_value": 0},
            r"^(?:0|[1-9][0-9]{0,3})(?:\.[0-9]{1,2})?$",
            ["0", "9.9", "9999.99"],
            ["-1", "10000", "1.234", "01", "1.", ".5", ""],
        ),
        (
            {"max_digits": 2, "decimal_places": 2},
            r"^-?0(?:\.[0-9]{1,2})?$",
            ["0.5", "-0.25"],
            ["1", "0.125"],
        ),
        (
            {"max_digits": 3, "decimal_places": 0},
            r"^-?(?:0|[1-9][0-9]{0,2})$",
            ["-999", "0"],
            ["1.0", "1000"],
        ),
        (
            {"max_digits": None, "decimal_places": None},
            r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$",
            ["123456789.123456789"],
            ["1e5"],
        ),
    ],
)
def test_decimal_pattern(
    kwargs: dict[str, Any], pattern: str, taken: list[str], refused: list[str]
) -> None:
    assert decimal_pattern(serializers.DecimalField(**kwargs)) == pattern
    assert [value for value in taken if re.fullmatch(pattern, value)] == taken
    assert [value for value in refused if re.fullmatch(pattern, value)] == []


@pytest.mark.parametrize(
    ("kwargs", "taken", "refused"),
    [
        ({}, ["a", " a ", "\ufeff"], ["", " ", "\x1c\u3000", "a\x00"]),
        ({"allow_blank": True}, ["", " "], ["\x00"]),
        ({"trim_whitespace": False}, [" "], ["\x00"]),
    ],
)
def test_text_pattern(
    kwargs: dict[str, Any], taken: list[str], refused: list[str]
) -> None:
    pattern = text_pattern(serializers.CharField(**kwargs))
    assert [value for value in taken if re.fullmatch(pattern, value)] == taken
    assert [value for value in refused if re.fullmatch(pattern, value)] == []
    # The pattern refuses exactly what DRF itself refuses.
    field = serializers.CharField(**kwargs)
    for value in refused:
        with pytest.raises(serializers.ValidationError):
            field.run_validation(value)
