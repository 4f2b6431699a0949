from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("request-id/", include("tests.testapp.request_id_views")),
    path("service-auth/", include("tests.testapp.service_auth_views")),
    path("client/", include("tests.testapp.client_views")),
]
