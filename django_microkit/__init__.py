"""django-microkit: one HTTP dialect for every Django service.

The names a service uses daily are re-exported here. They are imported lazily
(PEP 562) so that ``import django_microkit`` never imports Django REST framework
or reads settings before Django is configured.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_microkit.client import ServiceClient, ServiceError
    from django_microkit.conf import microkit_settings, rest_framework_defaults
    from django_microkit.errors import Problem
    from django_microkit.health import register_check
    from django_microkit.idempotency import IdempotentMixin
    from django_microkit.logging import logging_config
    from django_microkit.pagination import (
        CursorPagination,
        LimitOffsetPagination,
        PageNumberPagination,
    )
    from django_microkit.request_id import (
        get_request_id,
        get_trace_context,
        outgoing_headers,
    )
    from django_microkit.service_auth import (
        HasServiceScope,
        IsService,
        ServicePrincipal,
        ServiceTokenAuthentication,
        mint_service_token,
    )
    from django_microkit.versioning import VersionedSerializerMixin

try:
    __version__ = version("django-microkit")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "CursorPagination": "django_microkit.pagination",
    "HasServiceScope": "django_microkit.service_auth",
    "IdempotentMixin": "django_microkit.idempotency",
    "IsService": "django_microkit.service_auth",
    "LimitOffsetPagination": "django_microkit.pagination",
    "PageNumberPagination": "django_microkit.pagination",
    "Problem": "django_microkit.errors",
    "ServiceClient": "django_microkit.client",
    "ServiceError": "django_microkit.client",
    "ServicePrincipal": "django_microkit.service_auth",
    "ServiceTokenAuthentication": "django_microkit.service_auth",
    "VersionedSerializerMixin": "django_microkit.versioning",
    "get_request_id": "django_microkit.request_id",
    "get_trace_context": "django_microkit.request_id",
    "logging_config": "django_microkit.logging",
    "microkit_settings": "django_microkit.conf",
    "mint_service_token": "django_microkit.service_auth",
    "outgoing_headers": "django_microkit.request_id",
    "register_check": "django_microkit.health",
    "rest_framework_defaults": "django_microkit.conf",
}

__all__ = [
    "CursorPagination",
    "HasServiceScope",
    "IdempotentMixin",
    "IsService",
    "LimitOffsetPagination",
    "PageNumberPagination",
    "Problem",
    "ServiceClient",
    "ServiceError",
    "ServicePrincipal",
    "ServiceTokenAuthentication",
    "VersionedSerializerMixin",
    "__version__",
    "get_request_id",
    "get_trace_context",
    "logging_config",
    "microkit_settings",
    "mint_service_token",
    "outgoing_headers",
    "register_check",
    "rest_framework_defaults",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'django_microkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
