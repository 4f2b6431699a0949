"""The service's OpenAPI schema and Swagger UI in one include.

``path("", include("django_microkit.schema_urls"))`` adds ``api/schema/``
(named ``schema``, which service info's ``openapi_url`` follows) and, when
``drf_spectacular_sidecar`` is in ``INSTALLED_APPS``, Swagger UI at
``api/docs/`` (named ``docs``), its files served by the service itself: never
from a CDN, whose ``@latest`` would change the page under the service.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.templatetags.static import static
from django.urls import URLPattern, path
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response

from django_microkit.versioning.schema import SchemaView

__all__ = ["SwaggerView"]

#: The template's names of Swagger UI's files, in drf-spectacular-sidecar.
_SIDECAR_FILES = {
    "swagger_ui_css": "swagger-ui.css",
    "swagger_ui_bundle": "swagger-ui-bundle.js",
    "swagger_ui_standalone": "swagger-ui-standalone-preset.js",
    "favicon_href": "favicon-32x32.png",
}


class SwaggerView(SpectacularSwaggerView):
    """drf-spectacular's Swagger UI with drf-spectacular-sidecar's files,
    whatever ``SPECTACULAR_SETTINGS`` say (their default is a CDN's
    ``@latest``)."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response: Response = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]
        for key, name in _SIDECAR_FILES.items():
            response.data[key] = static(
                f"drf_spectacular_sidecar/swagger-ui-dist/{name}"
            )
        return response


urlpatterns: list[URLPattern] = [
    path("api/schema/", SchemaView.as_view(), name="schema"),
]
if apps.is_installed("drf_spectacular_sidecar"):
    urlpatterns.append(
        path("api/docs/", SwaggerView.as_view(url_name="schema"), name="docs")
    )
