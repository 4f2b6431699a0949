"""Routes served by a real gunicorn in tests/test_gunicorn.py."""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


def slow(request: HttpRequest) -> HttpResponse:
    """Answers after ``?seconds=`` (at most 5)."""
    time.sleep(min(float(request.GET.get("seconds", "0")), 5.0))
    return HttpResponse("slow")


urlpatterns: list[URLPattern | URLResolver] = [
    path("hello/", hello),
    path("slow/", slow),
    path("", include("django_microkit.urls")),
]
