"""A URLconf with a route holding a path converter, and the operational routes."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path


def thing(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(str(pk))


urlpatterns: list[URLPattern | URLResolver] = [
    path("things/<int:pk>/", thing),
    path("", include("django_microkit.urls")),
]
