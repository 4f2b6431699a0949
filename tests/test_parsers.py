"""JSON bodies too deeply nested to decode are a 400, not a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

import django_microkit
from django_microkit.parsers import JSONParser


def nested(depth: int) -> str:
    return '{"name": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_deeply_nested_json_is_a_parse_error(depth: int) -> None:
    response = Client().post(
        "/errors/parse/", nested(depth), content_type="application/json"
    )
    body: dict[str, Any] = json.loads(response.content)
    assert (
        response.status_code,
        body["code"],
        body["detail"],
    ) == (400, "parse_error", "JSON parse error - too deeply nested.")


def test_shallow_json_is_parsed() -> None:
    response = Client().post(
        "/errors/parse/", nested(3), content_type="application/json"
    )
    assert (response.status_code, response.json()) == (200, {"name": [[[]]]})


def test_rest_framework_defaults_name_the_parser() -> None:
    parsers = django_microkit.rest_framework_defaults()["DEFAULT_PARSER_CLASSES"]
    assert parsers == [
        "django_microkit.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ]
    parsers.append("changed")
    assert len(django_microkit.rest_framework_defaults()["DEFAULT_PARSER_CLASSES"]) == 3
    assert JSONParser.media_type == "application/json"
