"""Every operational route of django-microkit in one include.

``path("", include("django_microkit.urls"))`` adds the health probes and
``/.well-known/service-info``, at the paths configured in ``MICROKIT``. The
schema and Swagger UI are a second include, ``django_microkit.schema_urls``.
"""

from __future__ import annotations

from django_microkit.health.views import health_urlpatterns
from django_microkit.service_info import service_info_urlpatterns

urlpatterns = [*health_urlpatterns(), *service_info_urlpatterns()]
