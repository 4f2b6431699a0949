"""One OpenAPI document per API version, through drf-spectacular.

Not imported by :mod:`django_microkit.versioning` itself: DRF imports the
versioning schemes while it builds ``APIView``, before drf-spectacular's views
can be imported.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request

from django_microkit.versioning.config import _table
from django_microkit.versioning.schemes import (
    _ACCEPT,
    _HEADER,
    VERSION_HEADER,
    _Negotiation,
    _remember,
    resolve_version,
)

__all__ = ["SchemaView"]


class SchemaView(SpectacularAPIView):
    """drf-spectacular's schema view, one document per API version.

    ``GET /api/schema/?version=2`` describes version 2; without ``?version=`` the
    version negotiated for the request itself (the default unless the client
    asks for another) is described. An unknown or retired version is a 400
    ``unsupported_version`` problem. drf-spectacular's Swagger UI and ReDoc
    views pass their own ``?version=`` on to this view.

    drf-spectacular's own view prefers the version negotiated for the schema
    request over ``?version=``; since django-microkit always negotiates one (the
    default), that view would describe the default version whatever was asked.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        requested = request.query_params.get("version")
        if requested is not None:
            self.api_version = resolve_version(requested)
            request.version = self.api_version
            _remember(request, self.api_version, ())


def _documented_version(view: Any) -> str | None:
    request = getattr(view, "request", None)
    version = getattr(request, "version", None) if request is not None else None
    return str(version) if version is not None else None


def _scheme(view: Any) -> type[_Negotiation] | None:
    versioning_class = getattr(view, "versioning_class", None)
    if isinstance(versioning_class, type) and issubclass(
        versioning_class, _Negotiation
    ):
        return versioning_class
    return None


def _problem_statuses(view: Any) -> set[int]:
    """Problem statuses a versioned operation can answer: an unknown version
    (400, or 406 through ``Accept``) and, once a sunset date is set, 410."""
    scheme = _scheme(view)
    if scheme is None:
        return set()
    statuses = {406} if _ACCEPT in scheme.sources else set()
    if set(scheme.sources) - {_ACCEPT}:
        statuses.add(400)
    version = _documented_version(view)
    deprecation = _table().deprecated.get(version) if version else None
    if deprecation is not None and deprecation.sunset is not None:
        statuses.add(410)
    return statuses


def _operation_deprecated(view: Any) -> bool:
    """Whether the version a schema is being generated for is deprecated."""
    if _scheme(view) is None:
        return False
    version = _documented_version(view)
    return version is not None and version in _table().deprecated


def _schema_parameters(view: Any) -> list[Any]:
    """The ``X-API-Version`` header parameter of a view negotiated by header."""

    scheme = _scheme(view)
    if scheme is None or _HEADER not in scheme.sources:
        return []
    default = _table().default
    version = _documented_version(view) or default
    # Only the header can ask HeaderVersioning for a version other than the
    # default; NegotiatedVersioning also reads the documented media type.
    required = version != default and _ACCEPT not in scheme.sources
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
