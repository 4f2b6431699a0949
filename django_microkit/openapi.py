"""OpenAPI generation through drf-spectacular, extended with django-microkit's
shared components.

Every operation documents the problem responses it can return, as the shared
components ``Problem`` and ``ValidationProblem`` (built from the JSON Schema
shipped in ``django_microkit/schemas/problem.json``), so clients learn the
error body once.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import (
    ComponentIdentity,
    ComponentRegistry,
    ResolvedComponent,
)
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import AllowAny

from django_microkit import idempotency
from django_microkit.checks import is_subclass_path
from django_microkit.conf import derived
from django_microkit.errors.handler import JSON, PROBLEM_JSON, reason_phrase
from django_microkit.serializers import decimal_pattern, text_pattern
from django_microkit.versioning.config import version_table
from django_microkit.versioning.middleware import VERSION_HEADER
from django_microkit.versioning.schemes import (
    SOURCE_ACCEPT,
    SOURCE_HEADER,
    BaseVersioning,
)
from django_microkit.versioning.views import VersionedSerializerMixin

__all__ = [
    "PROBLEM",
    "VALIDATION_PROBLEM",
    "AutoSchema",
    "problem_json_schema",
    "problem_response",
]

PROBLEM = "Problem"
VALIDATION_PROBLEM = "ValidationProblem"
_REFS = {
    f"#/components/schemas/{PROBLEM}",
    f"#/components/schemas/{VALIDATION_PROBLEM}",
}

#: Headers documented on the problem responses that carry them.
_HEADERS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": "The authentication scheme to use (RFC 9110)."},
    415: {"Accept": "The media types the operation accepts (RFC 9110)."},
    429: {"Retry-After": "Seconds to wait before retrying."},
}

_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input (`validation_error`, one `errors` item per failing "
    "input) or a malformed body (`parse_error`).",
    401: "Missing or refused credentials.",
    403: "The caller may not perform this operation.",
    404: "No such resource.",
    406: "No acceptable representation for the `Accept` header.",
    415: "The request body's media type is not accepted.",
    429: "Too many requests.",
    500: "Unexpected server error; quote the `request_id` when reporting it.",
}


@cache
def problem_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the problem document."""
    text = files("django_microkit").joinpath("schemas/problem.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _components() -> tuple[dict[str, Any], dict[str, Any]]:
    """``Problem`` and ``ValidationProblem`` as OpenAPI 3.0 schema objects."""
    problem = copy.deepcopy(problem_json_schema())
    del problem["$schema"]
    properties = problem["properties"]
    errors = properties.pop("errors")
    del properties["debug"]  # development only
    validation = {
        "description": "A problem whose `errors` lists every failing input.",
        "allOf": [
            {"$ref": f"#/components/schemas/{PROBLEM}"},
            {"type": "object", "properties": {"errors": errors}},
        ],
    }
    return problem, validation


def problem_response(
    description: str = "",
    *,
    code: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    validation: bool = False,
) -> OpenApiResponse:
    """Document a problem of the service's own, with its extension members.

    ``extend_schema(responses={201: OrderSerializer, 409: problem_response(
    "Not enough stock.", code="insufficient_stock", extensions={"available":
    {"type": "integer"}})})`` documents the 409 as a ``Problem`` with an
    ``available`` member, served as ``application/problem+json``.
    """
    base = {
        "$ref": f"#/components/schemas/{VALIDATION_PROBLEM if validation else PROBLEM}"
    }
    own: dict[str, Any] = {"type": "object", "properties": dict(extensions or {})}
    if code is not None:
        own["properties"]["code"] = {"type": "string", "enum": [code]}
    schema = {"allOf": [base, own]} if own["properties"] else base
    return OpenApiResponse(response=schema, description=description)


def _is_problem_schema(schema: Mapping[str, Any]) -> bool:
    first = (schema.get("allOf") or [schema])[0]
    return first.get("$ref") in _REFS


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema generator, the hook for django-microkit's
    documented behaviour (problem responses, pagination, versioning, security).

    Problem responses are added to each operation from what the view does:
    400 where it takes input (a body, query parameters), 401/403 where
    authentication and permission classes apply, 404 on routes with path
    parameters, 415 with a body, 429 with throttles, 406 and 500 everywhere.
    A view replaces that choice with ``problem_statuses = [...]`` (or a dict
    keyed by method or viewset action), and documents problems of its own with
    :func:`problem_response`.
    """

    def get_operation(
        self,
        path: str,
        path_regex: str,
        path_prefix: str,
        method: str,
        registry: ComponentRegistry,
    ) -> dict[str, Any] | None:
        operation = super().get_operation(
            path, path_regex, path_prefix, method, registry
        )
        if operation is None:
            return None
        self._register_problem_components()
        responses: dict[str, Any] = operation["responses"]
        for response in responses.values():
            self._serve_as_problem(response)
        for status in self.get_problem_statuses(operation):
            responses.setdefault(str(status), self.get_problem_response(status))
        self._add_idempotency_problems(responses)
        return operation

    def get_override_parameters(self) -> list[OpenApiParameter | Any]:
        return [
            *super().get_override_parameters(),
            *self._version_parameters(),
            *idempotency.openapi_parameters(self.view, self.method),
        ]

    def _add_idempotency_problems(self, responses: dict[str, Any]) -> None:
        """The problems of an operation honouring ``Idempotency-Key``."""
        problems = idempotency.openapi_responses(self.view, self.method)
        for status, description in problems.items():
            response = responses.get(status)
            if response is None:
                responses[status] = {
                    **self.get_problem_response(int(status)),
                    "description": description,
                }
            else:
                response["description"] = (
                    f"{response.get('description', '')} {description}".strip()
                )

    def get_problem_statuses(self, operation: Mapping[str, Any]) -> list[int]:
        """The error statuses this operation documents as problems."""
        chosen = getattr(self.view, "problem_statuses", None)
        if isinstance(chosen, Mapping):
            key = self.method.lower()
            chosen = chosen.get(key, chosen.get(getattr(self.view, "action", None)))
        if chosen is not None:
            return sorted(chosen)
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        statuses = {406, 500}
        if has_body or any(p.get("in") == "query" for p in parameters):
            statuses.add(400)
        if has_body:
            statuses.add(415)
        if any(p.get("in") == "path" for p in parameters):
            statuses.add(404)
        statuses.update(self._auth_statuses())
        if self.view.get_throttles():
            statuses.add(429)
        statuses.update(self._pagination_statuses())
        statuses.update(self._versioning_statuses())
        return sorted(statuses)

    def _pagination_statuses(self) -> set[int]:
        # invalid_pagination, and page_not_found past the last page.
        if not self._is_list_view():
            return set()
        paginator = self._get_paginator()  # type: ignore[no-untyped-call]
        return set(getattr(paginator, "problem_statuses", ()))

    def _versioning_statuses(self) -> set[int]:
        """An unknown version (400, or 406 through ``Accept``) and, once a
        sunset date is set, 410."""
        versioning = _versioning(self.view)
        if versioning is None:
            return set()
        sources, version = versioning
        statuses = {406} if SOURCE_ACCEPT in sources else set()
        if set(sources) - {SOURCE_ACCEPT}:
            statuses.add(400)
        deprecation = version_table().deprecated.get(version) if version else None
        if deprecation is not None and deprecation.sunset is not None:
            statuses.add(410)
        return statuses

    def _version_parameters(self) -> list[OpenApiParameter]:
        """The ``X-API-Version`` header parameter of a view negotiated by header."""
        versioning = _versioning(self.view)
        if versioning is None or SOURCE_HEADER not in versioning[0]:
            return []
        default = version_table().default
        version = versioning[1] or default
        # Only the header can ask HeaderVersioning for a version other than the
        # default; NegotiatedVersioning also reads the documented media type.
        required = version != default and SOURCE_ACCEPT not in versioning[0]
        return [
            OpenApiParameter(
                VERSION_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=required,
                enum=[version],
                default=version,
                description=f"The API version this document describes ({version}). "
                f"Without it the service answers with version {default}.",
            )
        ]

    def _auth_statuses(self) -> set[int]:
        statuses: set[int] = set()
        authenticators = self.view.get_authenticators()
        if authenticators and authenticators[0].authenticate_header(self.view.request):
            # DRF answers 401 only when the first authenticator names a scheme.
            statuses.add(401)
        permissions = self.view.get_permissions()
        if any(not isinstance(p, AllowAny) for p in permissions):
            statuses.add(403)
        return statuses

    def get_problem_response(self, status: int) -> dict[str, Any]:
        component = VALIDATION_PROBLEM if status == 400 else PROBLEM
        schema = {"$ref": f"#/components/schemas/{component}"}
        response: dict[str, Any] = {
            "description": _DESCRIPTIONS.get(status) or reason_phrase(status),
            "content": {
                media_type: {"schema": schema} for media_type in (PROBLEM_JSON, JSON)
            },
        }
        headers = _HEADERS.get(status)
        if headers:
            response["headers"] = {
                name: {"schema": {"type": "string"}, "description": text}
                for name, text in headers.items()
            }
        return response

    def _serve_as_problem(self, response: dict[str, Any]) -> None:
        """A response documented with :func:`problem_response` is served as
        ``application/problem+json`` (and ``application/json``)."""
        content: Mapping[str, Any] = response.get("content") or {}
        schemas = [media.get("schema") for media in content.values()]
        if schemas and all(_is_problem_schema(schema) for schema in schemas):
            response["content"] = {
                media_type: {"schema": schemas[0]}
                for media_type in (PROBLEM_JSON, JSON)
            }

    def _register_problem_components(self) -> None:
        problem, validation = _components()
        for name, schema in ((PROBLEM, problem), (VALIDATION_PROBLEM, validation)):
            # drf-spectacular's plumbing has no annotations.
            component = ResolvedComponent(
                name=name,
                type=ResolvedComponent.SCHEMA,
                schema=schema,
                object=ComponentIdentity(f"django_microkit.{name}"),
            )
            self.registry.register_on_missing(component)

    def get_description(self) -> str:  # type: ignore[override]
        return _markdown(super().get_description())

    def get_auth(self) -> list[dict[str, Any]]:
        """Security schemes of the authenticators that can authenticate here:
        without Django's ``AuthenticationMiddleware`` no session ever logs a
        user in, so ``SessionAuthentication`` is left out."""
        view = self.view
        authenticators = view.get_authenticators()
        view.get_authenticators = lambda: [  # type: ignore[method-assign]
            a for a in authenticators if _can_authenticate(a)
        ]
        try:
            auth: list[dict[str, Any]] = super().get_auth()
        finally:
            del view.get_authenticators
        return auth

    def resolve_serializer(
        self, serializer: Any, direction: Any, bypass_extensions: bool = False
    ) -> ResolvedComponent:
        """A versioned view's ``serializer_class`` named in ``extend_schema``
        (an extra ``@action``'s responses) stands for the documented version's
        serializer, as ``get_serializer()`` answers with it."""
        view = self.view
        named = serializer if isinstance(serializer, type) else type(serializer)
        if (
            isinstance(view, VersionedSerializerMixin)
            and named is getattr(view, "serializer_class", None)
            and getattr(serializer, "parent", None) is None
        ):
            serializer = view.get_serializer_class()
        return super().resolve_serializer(serializer, direction, bypass_extensions)

    def _map_serializer(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer(  # type: ignore[no-untyped-call]
            *args, **kwargs
        )
        if "description" in schema:
            schema["description"] = _markdown(schema["description"])
        return schema

    def _map_serializer_field(
        self, field: Any, direction: str, bypass_extensions: bool = False
    ) -> Any:
        """drf-spectacular's field schema, with the rules DRF enforces on
        input that it leaves out, so that a client (or a fuzzer) that follows
        the schema is never refused: a string's
        :func:`~django_microkit.serializers.text_pattern` and ``minLength`` 1
        when blank is refused, a decimal string's
        :func:`~django_microkit.serializers.decimal_pattern` (a decimal number
        its ``multipleOf``), a list's ``minItems``/``maxItems`` from
        ``allow_empty``, ``min_length`` and ``max_length``."""
        schema = super()._map_serializer_field(  # type: ignore[no-untyped-call]
            field, direction, bypass_extensions
        )
        if not isinstance(schema, dict) or getattr(field, "read_only", False):
            return schema
        kind = schema.get("type")
        if isinstance(field, serializers.DecimalField):
            if kind == "string":
                schema["pattern"] = decimal_pattern(field)
            elif field.decimal_places is not None:
                schema["multipleOf"] = 10.0**-field.decimal_places
        elif kind == "string" and isinstance(field, serializers.CharField):
            if not any(isinstance(v, RegexValidator) for v in field.validators):
                schema.setdefault("pattern", text_pattern(field))
            if not field.allow_blank:
                schema["minLength"] = max(schema.get("minLength", 0), 1)
        elif kind == "array":
            least = getattr(field, "min_length", None) or 0
            if not getattr(field, "allow_empty", True):
                least = max(least, 1)
            if least:
                schema["minItems"] = max(schema.get("minItems", 0), least)
            most = getattr(field, "max_length", None)
            if most is not None:
                schema["maxItems"] = min(schema.get("maxItems", most), most)
        return schema

    def get_paginated_name(self, serializer_name: str) -> str:
        # Cursor pages have no count: their envelope is a component of its own.
        paginator = self._get_paginator()  # type: ignore[no-untyped-call]
        prefix = getattr(paginator, "schema_component_prefix", "Paginated")
        return f"{prefix}{serializer_name}List"

    def is_deprecated(self) -> bool:
        """Deprecated too: every operation of a deprecated version's document."""
        versioning = _versioning(self.view)
        version = versioning[1] if versioning else None
        return bool(super().is_deprecated()) or (
            version is not None and version in version_table().deprecated
        )


def _versioning(view: Any) -> tuple[tuple[str, ...], str | None] | None:
    """The sources of the view's django-microkit versioning scheme, and the
    version being documented; ``None`` for a view versioned otherwise."""
    scheme = getattr(view, "versioning_class", None)
    if not (isinstance(scheme, type) and issubclass(scheme, BaseVersioning)):
        return None
    version = getattr(getattr(view, "request", None), "version", None)
    return scheme.sources, None if version is None else str(version)


_RST_LITERAL = re.compile(r"``([^`]+)``")


def _markdown(text: str) -> str:
    """A docstring's reStructuredText literals (double backticks) as the
    Markdown code spans (single backticks) Swagger UI and ReDoc render."""
    return _RST_LITERAL.sub(r"`\1`", text)


@derived(settings=("MIDDLEWARE",))
def _authenticates_sessions() -> bool:
    """Whether ``AuthenticationMiddleware`` (or a subclass) is installed."""
    return any(
        is_subclass_path(
            path, "django.contrib.auth.middleware.AuthenticationMiddleware"
        )
        for path in settings.MIDDLEWARE
    )


def _can_authenticate(authenticator: BaseAuthentication) -> bool:
    # SessionAuthentication reads the user AuthenticationMiddleware sets.
    return not isinstance(authenticator, SessionAuthentication) or (
        _authenticates_sessions()
    )
