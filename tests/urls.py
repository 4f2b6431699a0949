from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("idempotency/", include("tests.testapp.idempotency_views")),
]
