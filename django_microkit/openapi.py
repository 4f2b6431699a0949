"""OpenAPI generation through drf-spectacular, extended with django-microkit's
shared components."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

__all__ = ["AutoSchema"]


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema generator, the hook for django-microkit's
    documented behaviour (problem responses, pagination, versioning, security).
    """
