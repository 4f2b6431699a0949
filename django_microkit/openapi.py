"""OpenAPI generation through drf-spectacular, extended with django-microkit's
shared components."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter

from django_microkit import idempotency

__all__ = ["AutoSchema"]

_PROBLEM_MEDIA_TYPE = "application/problem+json"

# RFC 9457 problem document, as the contract describes it.
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "format": "uri-reference"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "detail": {"type": "string"},
                    "pointer": {"type": "string"},
                    "parameter": {"type": "string"},
                    "header": {"type": "string"},
                },
                "required": ["code", "detail"],
            },
        },
    },
    "required": ["type", "title", "status", "code"],
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema generator, the hook for django-microkit's
    documented behaviour (problem responses, pagination, versioning, security).
    """

    def get_override_parameters(self) -> list[OpenApiParameter | Any]:
        return [
            *super().get_override_parameters(),
            *idempotency._openapi_parameters(self.view, self.method),
        ]

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        problems = idempotency._openapi_responses(self.view, self.method)
        for status, description in problems.items():
            responses.setdefault(
                status,
                {
                    "description": description,
                    "content": {_PROBLEM_MEDIA_TYPE: {"schema": self._problem_ref()}},
                },
            )
        return responses

    def _problem_ref(self) -> dict[str, Any]:
        component = ResolvedComponent(  # type: ignore[no-untyped-call]
            name="Problem",
            type=ResolvedComponent.SCHEMA,
            object="Problem",
            schema=_PROBLEM_SCHEMA,
        )
        self.registry.register_on_missing(component)
        return component.ref
