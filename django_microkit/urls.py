"""Every operational route of django-microkit in one include.

``path("", include("django_microkit.urls"))`` adds the health probes,
``/.well-known/service-info`` and ``/metrics``, at the paths configured in
``MICROKIT``. The schema and Swagger UI are a second include,
``django_microkit.schema_urls``.
"""

from __future__ import annotations

from django_microkit.health.views import health_urlpatterns
from django_microkit.metrics.views import metrics_urlpatterns
from django_microkit.service_info import service_info_urlpatterns

urlpatterns = [
    *health_urlpatterns(),
    *service_info_urlpatterns(),
    *metrics_urlpatterns(),
]
