from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("request-id/", include("tests.testapp.request_id_views")),
    path("service-auth/", include("tests.testapp.service_auth_views")),
    path("errors/", include("tests.testapp.errors_urls")),
    path("idempotency/", include("tests.testapp.idempotency_views")),
    path("client/", include("tests.testapp.client_views")),
    # Health probes and service info.
    path("", include("django_microkit.urls")),
    path("", include("tests.testapp.paging_views")),
    path("", include("tests.testapp.versioning_views")),
]

handler400 = "django_microkit.errors.bad_request"
handler403 = "django_microkit.errors.permission_denied"
handler404 = "django_microkit.errors.page_not_found"
handler500 = "django_microkit.errors.server_error"
