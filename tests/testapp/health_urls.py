"""A URLconf with the operational routes beside an ordinary view."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def private(request: HttpRequest) -> HttpResponse:
    return HttpResponse("private")


urlpatterns = [
    path("", include("django_microkit.urls")),
    path("private", private),
]
