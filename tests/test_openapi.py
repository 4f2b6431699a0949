from __future__ import annotations

import json
import re
import uuid
from importlib.resources import files
from typing import Any

import pytest
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.utils import extend_schema
from openapi_spec_validator import validate
from rest_framework import mixins, routers, serializers, viewsets
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient

from django_microkit.openapi import problem_json_schema
from django_microkit.serializers import text_pattern
from django_microkit.versioning import VersionedSerializerMixin


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated = SchemaGenerator(urlconf="tests.urls").get_schema(
        request=None, public=True
    )
    document: dict[str, Any] = json.loads(OpenApiJsonRenderer().render(generated))
    return document


def test_schema_is_valid_openapi(schema: dict[str, Any]) -> None:
    validate(schema)


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


# --- what the schema says the API takes ---------------------------------------


class GadgetSerializer(serializers.Serializer[Any]):
    """A gadget: ``name`` and ``price``."""

    name = serializers.CharField(max_length=20)
    nickname = serializers.CharField(allow_blank=True, required=False)
    code = serializers.RegexField(r"^[A-Z]+$")
    price = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=0)
    tags = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    serial = serializers.CharField(read_only=True)


class GadgetV1Serializer(serializers.Serializer[Any]):
    """A gadget as version 1 showed it."""

    name = serializers.CharField()
    price = serializers.DecimalField(
        max_digits=6, decimal_places=2, coerce_to_string=False
    )
    weight = serializers.DecimalField(
        max_digits=None, decimal_places=None, coerce_to_string=False
    )


class PartSerializer(serializers.Serializer[Any]):
    size = serializers.IntegerField(min_value=1)


class KitSerializer(serializers.Serializer[Any]):
    # many=True makes a ListSerializer, which takes these (the stubs don't say).
    parts = PartSerializer(many=True, allow_empty=False, max_length=3)  # type: ignore[call-arg]
    spares = PartSerializer(many=True, min_length=2, required=False)  # type: ignore[call-arg]


class GadgetViewSet(
    VersionedSerializerMixin, mixins.CreateModelMixin, viewsets.GenericViewSet[Any]
):
    """Gadgets, paged by ``?page=``."""

    serializer_class = GadgetSerializer
    serializer_classes = {"1": GadgetV1Serializer}
    lookup_value_converter = "int"
    authentication_classes = [SessionAuthentication, BasicAuthentication]

    @extend_schema(request=KitSerializer, responses={200: GadgetSerializer})
    @action(detail=True, methods=["post"])
    def assemble(self, request: Request, pk: str | None = None) -> Response:
        """Put a ``Kit`` together."""
        raise NotImplementedError


def _gadget_schema(version: str, **settings: Any) -> dict[str, Any]:
    router = routers.SimpleRouter(use_regex_path=False)
    router.register("gadgets", GadgetViewSet, basename="gadget")
    with override_settings(
        MICROKIT={"VERSIONING": {"VERSIONS": ["1", "2"], "DEFAULT_VERSION": "2"}},
        **settings,
    ):
        generated = SchemaGenerator(patterns=router.urls, api_version=version)
        document: dict[str, Any] = json.loads(
            OpenApiJsonRenderer().render(generated.get_schema(None, True))
        )
    validate(document)
    return document


def test_fields_declare_what_drf_enforces() -> None:
    properties = _gadget_schema("2")["components"]["schemas"]["Gadget"]["properties"]
    assert properties["name"] == {
        "type": "string",
        "maxLength": 20,
        "minLength": 1,
        "pattern": text_pattern(serializers.CharField()),
    }
    # drf-spectacular's own shape for a blank-able string with a pattern.
    assert properties["nickname"] == {
        "oneOf": [
            {"type": "string", "pattern": "^[^\\u0000]*$"},
            {"type": "string", "maxLength": 0},
        ]
    }
    assert properties["code"]["pattern"] == "^[A-Z]+$"
    assert properties["price"]["pattern"] == r"^(?:0|[1-9][0-9]{0,3})(?:\.[0-9]{1,2})?$"
    assert properties["tags"]["minItems"] == 1
    assert properties["serial"] == {"type": "string", "readOnly": True}


def test_nested_lists_declare_their_lengths() -> None:
    kit = _gadget_schema("2")["components"]["schemas"]["Kit"]["properties"]
    assert {k: v for k, v in kit["parts"].items() if k != "items"} == {
        "type": "array",
        "minItems": 1,
        "maxItems": 3,
    }
    assert kit["spares"]["minItems"] == 2
    assert "maxItems" not in kit["spares"]


def test_a_decimal_shown_as_a_number_is_a_multiple_of_its_smallest_step() -> None:
    v1 = _gadget_schema("1")["components"]["schemas"]["GadgetV1"]["properties"]
    assert v1["price"]["type"] == "number"
    assert v1["price"]["multipleOf"] == 0.01
    assert "multipleOf" not in v1["weight"]


@pytest.mark.parametrize(("version", "component"), [("1", "GadgetV1"), ("2", "Gadget")])
def test_an_actions_responses_follow_the_version(version: str, component: str) -> None:
    document = _gadget_schema(version)
    operation = document["paths"]["/gadgets/{id}/assemble/"]["post"]
    # The media type names the version: application/json; version=…
    [content] = operation["responses"]["200"]["content"].values()
    assert content["schema"] == {"$ref": f"#/components/schemas/{component}"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Kit"}
    [created] = document["paths"]["/gadgets/"]["post"]["responses"]["201"][
        "content"
    ].values()
    assert created["schema"] == {"$ref": f"#/components/schemas/{component}"}


@pytest.mark.parametrize(
    ("middleware", "schemes"),
    [
        ([], ["basicAuth"]),
        (
            [
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
            ],
            ["basicAuth", "cookieAuth"],
        ),
    ],
)
def test_session_auth_is_documented_only_where_sessions_log_users_in(
    middleware: list[str], schemes: list[str]
) -> None:
    document = _gadget_schema("2", MIDDLEWARE=middleware)
    assert sorted(document["components"]["securitySchemes"]) == schemes
    operation = document["paths"]["/gadgets/"]["post"]
    assert sorted(name for item in operation["security"] for name in item) == schemes


def test_descriptions_are_markdown() -> None:
    document = _gadget_schema("2")
    operation = document["paths"]["/gadgets/{id}/assemble/"]["post"]
    assert operation["description"] == "Put a `Kit` together."
    gadget = document["components"]["schemas"]["Gadget"]
    assert gadget["description"] == "A gadget: `name` and `price`."
    assert document["paths"]["/gadgets/"]["post"]["description"] == (
        "Gadgets, paged by `?page=`."
    )


@pytest.mark.parametrize(
    "key",
    ["a", '"', '""', '"a"', '"a', 'a"', '"a\\"b"', '"a\\b"', "x" * 255, "x" * 256],
)
@pytest.mark.django_db
def test_the_idempotency_key_pattern_is_what_the_service_takes(
    schema: dict[str, Any], key: str
) -> None:
    operation = schema["paths"]["/idempotency/counter/"]["post"]
    [pattern] = [
        p["schema"]["pattern"]
        for p in operation["parameters"]
        if p["name"] == "Idempotency-Key"
    ]
    response = APIClient().post(
        "/idempotency/counter/",
        {"counter": uuid.uuid4().hex},
        format="json",
        headers={"Idempotency-Key": key},
    )
    refused = response.status_code == 400
    assert refused == (response.json().get("code") == "invalid_idempotency_key")
    assert bool(re.fullmatch(pattern, key)) is not refused
