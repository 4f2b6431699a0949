"""A URLconf with a route holding a path converter, a regular expression's
route, and the operational routes."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path, re_path


def thing(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(str(pk))


urlpatterns: list[URLPattern | URLResolver] = [
    path("things/<int:pk>/", thing),
    # As DRF's routers write theirs.
    re_path(r"^regex/(?P<pk>[0-9]+)/$", thing),
    path("", include("django_microkit.urls")),
]
