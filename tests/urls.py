from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("service-auth/", include("tests.testapp.service_auth_views")),
]
