"""URLs every example service shares: health, service info, schema, docs, and the
problem-document error handlers."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.routers import DefaultRouter
from rest_framework.viewsets import ViewSetMixin

from django_microkit.versioning.schema import SchemaView

# Errors that never reach a DRF view (unknown URLs, oversized bodies, crashes
# outside views) answer with problem documents.
handler400 = "django_microkit.errors.bad_request"
handler403 = "django_microkit.errors.permission_denied"
handler404 = "django_microkit.errors.page_not_found"
handler500 = "django_microkit.errors.server_error"


def service_urls(
    prefix: str, viewset: type[ViewSetMixin], basename: str
) -> list[URLPattern | URLResolver]:
    """The service's one resource (``viewset`` at ``/api/<prefix>/``), with the
    shared routes."""
    router = DefaultRouter(trailing_slash=True)
    router.include_root_view = False
    router.register(prefix, viewset, basename=basename)
    return [
        # /health/live, /health/ready, /health/startup, /.well-known/service-info
        path("", include("django_microkit.urls")),
        path("api/", include(router.urls)),
        # One document per API version: /api/schema/?version=1, /api/docs/?version=1.
        path("api/schema/", SchemaView.as_view(), name="schema"),
        path(
            "api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"
        ),
    ]
