from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from openapi_spec_validator import validate

from django_microkit.openapi import problem_json_schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated = SchemaGenerator(urlconf="tests.urls").get_schema(
        request=None, public=True
    )
    document: dict[str, Any] = json.loads(OpenApiJsonRenderer().render(generated))
    return document


def test_schema_is_valid_openapi(schema: dict[str, Any]) -> None:
    validate(schema)  # type: ignore[arg-type]


PROBLEM = {"$ref": "#/components/schemas/Problem"}
VALIDATION_PROBLEM = {"$ref": "#/components/schemas/ValidationProblem"}


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        # query parameters: 400; no auth, no throttles
        ("/errors/orders/", "get", ["200", "400", "406", "500"]),
        # a body: 400 and 415, plus the view's own problems
        ("/errors/orders/", "post", ["201", "400", "406", "409", "415", "422", "500"]),
        # auth with a scheme: 401; a permission: 403; a path parameter: 404;
        # versioned by header too: 400 for an unknown version
        (
            "/errors/widgets/{id}/",
            "get",
            ["200", "400", "401", "403", "404", "406", "500"],
        ),
        # the view's choice, per method
        ("/errors/widgets/{id}/", "delete", ["204", "401", "404", "500"]),
        ("/errors/scope/", "get", ["200", "403", "499", "500", "503"]),
        # session auth names no scheme: DRF answers 403, never 401
        ("/errors/session/", "get", ["200", "400", "403", "406", "500"]),
        ("/errors/throttled/", "get", ["200", "400", "406", "429", "500"]),
        ("/errors/auth/", "get", ["200", "400", "401", "403", "406", "500"]),
    ],
)
def test_problem_responses_per_operation(
    schema: dict[str, Any], path: str, method: str, statuses: list[str]
) -> None:
    responses = schema["paths"][path][method]["responses"]
    assert sorted(responses) == statuses
    for status, response in responses.items():
        if status < "400":
            continue
        content = response["content"]
        assert sorted(content) == ["application/json", "application/problem+json"]
        assert content["application/json"] == content["application/problem+json"]
        if status not in ("409", "422", "503"):
            expected = VALIDATION_PROBLEM if status == "400" else PROBLEM
            assert content["application/json"]["schema"] == expected


@pytest.mark.parametrize(
    ("path", "method", "status", "header"),
    [
        ("/errors/auth/", "get", "401", "WWW-Authenticate"),
        ("/errors/throttled/", "get", "429", "Retry-After"),
        ("/errors/orders/", "post", "415", "Accept"),
    ],
)
def test_problem_headers(
    schema: dict[str, Any], path: str, method: str, status: str, header: str
) -> None:
    headers = schema["paths"][path][method]["responses"][status]["headers"]
    assert headers[header]["schema"] == {"type": "string"}


def test_own_problems_with_extension_members(schema: dict[str, Any]) -> None:
    responses = schema["paths"]["/errors/orders/"]["post"]["responses"]
    assert responses["409"]["description"] == "Not enough stock."
    assert responses["409"]["content"]["application/problem+json"]["schema"] == {
        "allOf": [
            PROBLEM,
            {
                "type": "object",
                "properties": {
                    "available": {"type": "integer"},
                    "code": {"type": "string", "enum": ["insufficient_stock"]},
                },
            },
        ]
    }
    assert responses["422"]["content"]["application/problem+json"]["schema"] == {
        "allOf": [
            VALIDATION_PROBLEM,
            {"type": "object", "properties": {"balance": {"type": "string"}}},
        ]
    }


def test_excluded_operations_stay_excluded(schema: dict[str, Any]) -> None:
    assert "/errors/upload/" not in schema["paths"]


def test_a_plain_own_problem(schema: dict[str, Any]) -> None:
    responses = schema["paths"]["/errors/scope/"]["get"]["responses"]
    assert responses["503"]["description"] == "The inventory is down."
    assert responses["503"]["content"]["application/problem+json"]["schema"] == PROBLEM
    assert responses["499"]["description"] == "Error"


def test_shared_components(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    problem = components["Problem"]
    assert problem["required"] == ["type", "title", "status", "code"]
    assert "errors" not in problem["properties"]
    assert "debug" not in problem["properties"]
    assert components["ValidationProblem"]["allOf"][0] == PROBLEM
    assert (
        components["ValidationProblem"]["allOf"][1]["properties"]["errors"]
        == problem_json_schema()["properties"]["errors"]
    )
    assert [name for name in components if name.endswith("Enum")] == []


def test_the_shipped_schema_is_not_changed_by_generation(
    schema: dict[str, Any],
) -> None:
    shipped = files("django_microkit").joinpath("schemas/problem.json").read_text()
    assert json.loads(shipped) == problem_json_schema()
