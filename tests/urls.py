from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("request-id/", include("tests.testapp.request_id_views")),
    path("errors/", include("tests.testapp.errors_urls")),
    # Health probes and service info.
    path("", include("django_microkit.urls")),
]

handler400 = "django_microkit.errors.bad_request"
handler403 = "django_microkit.errors.permission_denied"
handler404 = "django_microkit.errors.page_not_found"
handler500 = "django_microkit.errors.server_error"
