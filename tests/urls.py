from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    # Health probes and service info.
    path("", include("django_microkit.urls")),
]
