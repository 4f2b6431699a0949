"""django-microkit: one HTTP dialect for every Django service.

The names a service uses daily are re-exported here. They are imported lazily
(PEP 562) so that ``import django_microkit`` never imports Django REST framework
or reads settings before Django is configured.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names of _LAZY, for type checkers (a test keeps them equal)
    from django_microkit.client import ServiceClient as ServiceClient
    from django_microkit.client import ServiceError as ServiceError
    from django_microkit.conf import microkit_settings as microkit_settings
    from django_microkit.conf import rest_framework_defaults as rest_framework_defaults
    from django_microkit.errors import Problem as Problem
    from django_microkit.health import register_check as register_check
    from django_microkit.idempotency import IdempotentMixin as IdempotentMixin
    from django_microkit.logging import logging_config as logging_config
    from django_microkit.pagination import CursorPagination as CursorPagination
    from django_microkit.pagination import (
        LimitOffsetPagination as LimitOffsetPagination,
    )
    from django_microkit.pagination import PageNumberPagination as PageNumberPagination
    from django_microkit.request_id import get_request_id as get_request_id
    from django_microkit.request_id import get_trace_context as get_trace_context
    from django_microkit.request_id import outgoing_headers as outgoing_headers
    from django_microkit.service_auth import HasServiceScope as HasServiceScope
    from django_microkit.service_auth import IsService as IsService
    from django_microkit.service_auth import ServicePrincipal as ServicePrincipal
    from django_microkit.service_auth import (
        ServiceTokenAuthentication as ServiceTokenAuthentication,
    )
    from django_microkit.service_auth import mint_service_token as mint_service_token
    from django_microkit.versioning import (
        VersionedSerializerMixin as VersionedSerializerMixin,
    )

try:
    __version__ = version("django-microkit")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

# The names a service uses daily -> the module defining each (where
# docs/api.md describes them).
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

__all__ = sorted(["__version__", *_LAZY])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'django_microkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
