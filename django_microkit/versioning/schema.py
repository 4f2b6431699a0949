"""One OpenAPI document per API version, through drf-spectacular.

Not imported by :mod:`django_microkit.versioning` itself: DRF imports the
versioning schemes while it builds ``APIView``, before drf-spectacular's views
can be imported. What each operation says about versions is added by
:class:`django_microkit.openapi.AutoSchema`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request

from django_microkit.versioning.middleware import announce_version
from django_microkit.versioning.schemes import resolve_version

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
            # The 400 for an unknown one names no version.
            announce_version(request, None)
            self.api_version = request.version = resolve_version(requested)
            announce_version(request, self.api_version)
